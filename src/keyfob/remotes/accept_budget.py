"""The wake-up budgets of a batch's vehicles, attached to each accepted remote's answer.

POST remote sent with ``Keyfob-Budget: true`` answers with ``Keyfob-Wakeups-Remaining`` and
``Keyfob-Wakeups-Reset`` (docs/extensions.md). Reading them costs one statement per batch of
the acceptor that holds such a request, in the batch's own unit of work (on SQLite, the same
trip to the driver's thread), never one per request; a batch without one costs nothing more.
The header makes it opt-in: measured on ``bench/api_accept.py``, answering every POST with
the budgets cost about 15 us of server CPU per request (some 7 %). The figures are those
before the remote runs: accepting spends no wake-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from keyfob.errors import KeyfobError
from keyfob.remotes.accept_fleet import AcceptRequest
from keyfob.remotes.accept_user import UserAcceptRequest
from keyfob.remotes.staging import Posted
from keyfob.store.units import Plan
from keyfob.vehicles.budget import WakeLimits, plan_budgets


def with_budgets(
    requests: Sequence[AcceptRequest | UserAcceptRequest],
    answers: list[Posted | KeyfobError],
    *,
    now: datetime,
    limits: WakeLimits,
) -> Plan[list[Posted | KeyfobError]]:
    wanted = {
        request.vehicle_id
        for request, answer in zip(requests, answers, strict=True)
        if request.budget and isinstance(answer, Posted)
    }
    if not wanted:
        return answers
    budgets = yield from plan_budgets(wanted, limits=limits, now=now)
    return [
        replace(answer, budget=budgets[request.vehicle_id])
        if request.budget and isinstance(answer, Posted)
        else answer
        for request, answer in zip(requests, answers, strict=True)
    ]
