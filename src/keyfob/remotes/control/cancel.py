"""Cancelling a remote that has not reached the vehicle yet.

A remote can be stopped while it is ``queued`` or ``waking``: no command has been published
for it, so the car will never act on it. It then ends as every stopped remote ends, with one
``Done`` / ``Failed`` event whose ``failureCause`` is ``CanceledByDriver`` (the contract's
cause for a command called off before it ran; no new cause, so strict clients parse it), and
that event's notification, written by the dispatcher's own ``progress.apply``. Once ``sent``
the command is on its way and may already have run: cancelling is refused with 409, and so is
cancelling a remote that has finished.

The remote is read and changed in one unit of work, locked (PostgreSQL ``FOR UPDATE``, SQLite
``BEGIN IMMEDIATE``), so a dispatcher starting it at the same moment either sees it cancelled
or has sent it first, never both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes import progress
from keyfob.remotes.lifecycle import QUEUED, SENT, WAKING, failed
from keyfob.remotes.models import remotes
from keyfob.remotes.rows import REMOTE_COLUMNS, REMOTES_AND_VEHICLES, read_remotes
from keyfob.store.units import Fetch, Plan
from keyfob.vocabulary import FailureCause

CANCEL_CAUSE = FailureCause.CANCELED_BY_DRIVER
CANCELLABLE = (QUEUED, WAKING)


def cancel_plan(remote_id: str, *, now: datetime) -> Plan[None]:
    """End the remote Done/Failed CanceledByDriver, or raise 409 if it is past cancelling.

    The caller has checked that the remote is the caller's (``service.get_remote`` and kin).
    """
    rows = yield Fetch(
        select(*REMOTE_COLUMNS)
        .select_from(REMOTES_AND_VEHICLES)
        .where(remotes.c.id == remote_id)
        .with_for_update(of=remotes)
    )
    (remote,) = read_remotes(rows)
    if remote.phase not in CANCELLABLE:
        raise KeyfobError(ErrorCode.REMOTE_NOT_CANCELLABLE, _why_not(remote.phase, remote.status))
    yield from progress.apply([progress.plan(remote, failed(CANCEL_CAUSE))], now=now)


def _why_not(phase: str, status: str) -> str:
    if phase == SENT:
        return (
            "the command was already sent to the vehicle, which may have acted on it; "
            "it can no longer be cancelled"
        )
    return f"the remote has already finished ({status}); there is nothing to cancel"
