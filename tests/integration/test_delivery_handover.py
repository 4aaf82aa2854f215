"""A dispatcher's own delivery worker posts the notifications it stores, with no claim between.

With ``delivery.inline`` the vehicle side runs a worker beside its dispatcher, and the unit of
work that writes a remote's events writes their notifications already leased to that worker,
which posts them once the unit commits (``notifications.handover``). What a partner sees: every
event arrives at once and in order, though the worker's poll is half a minute; when the process
dies between its commit and its POSTs, another worker delivers the events, in order, once their
lease runs out; an event leased elsewhere keeps the remote's later events behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import Tenant
from delivery_support import Receiver, drain, receiver, worker
from keyfob.kit.clock import FakeClock, utcnow
from keyfob.notifications.worker import DeliveryWorker
from keyfob.runtime.vehicle_side import vehicle_side
from keyfob.store.engine import Database
from vehicle_support import embedded, until_done

SLOW_POLL = {"inline": True, "allow_private_webhooks": True, "poll_s": 30.0, "lease_s": 30.0}
"""A worker that only polls would post nothing within the tests' time-outs."""
BESIDE = {"run_worker_in_child": False}
"""``vehicle_side`` then runs the worker in the dispatcher's process (``serve``'s default on
SQLite is a delivery child of its own, reached through a socket: ``test_handover_local``)."""


async def _callback(tenant: Tenant, url: str) -> str:
    answer = await tenant.http.post(
        f"{tenant.fleet}/remote/callbacks",
        json={"callback": {"webhook": {"target": url, "name": "hook"}}, "remoteTypes": ["Horn"]},
    )
    assert answer.status_code == 200, answer.text
    callback_id: str = answer.json()["callbackId"]
    return callback_id


async def _horns(tenant: Tenant, callback_id: str) -> dict[str, str]:
    """A horn on each vehicle; the path of each remote by its id."""
    posted = {}
    for vehicle in tenant.vehicles.values():
        path = f"{tenant.fleet}/vehicles/{vehicle.id}/callbacks/{callback_id}/remotes"
        answer = await tenant.http.post(path, json={"horn": {"state": "Activated"}})
        assert answer.status_code == 202, answer.text
        remote_id = answer.json()["remoteActionId"]
        posted[remote_id] = f"{path}/{remote_id}"
    return posted


async def _histories(tenant: Tenant, posted: dict[str, str]) -> dict[str, list[str]]:
    found = {}
    for remote_id, path in posted.items():
        done = await until_done(tenant, path)
        found[remote_id] = [event["status"] for event in done["events"]]
    return found


async def _until_delivered(hook: Receiver, histories: dict[str, list[str]]) -> None:
    async with asyncio.timeout(10):
        while any(len(hook.statuses_of(r)) < len(h) for r, h in histories.items()):
            await asyncio.sleep(0.02)


def count_claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows each claim of any worker leases from now on."""
    claims: list[int] = []
    claim = DeliveryWorker.claim

    async def counted(self: DeliveryWorker, *args: Any, **kwargs: Any) -> Any:
        found = await claim(self, *args, **kwargs)
        claims.append(sum(len(delivery.rows) for delivery in found))
        return found

    monkeypatch.setattr(DeliveryWorker, "claim", counted)
    return claims


@asynccontextmanager
async def delivered_horns(
    db: Database, roles: Sequence[Any], **settings: Any
) -> AsyncIterator[tuple[Receiver, dict[str, list[str]]]]:
    """A horn on each vehicle, run by ``roles``: the receiver and each remote's history, once
    every event has been received (the app still running)."""
    async with (
        receiver() as hook,
        embedded(db, roles=roles, delivery=SLOW_POLL, **settings) as (_, tenant),
    ):
        posted = await _horns(tenant, await _callback(tenant, hook.url))
        histories = await _histories(tenant, posted)
        await _until_delivered(hook, histories)
        yield hook, histories


async def test_every_event_reaches_the_partner_in_order_without_a_claim(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = count_claims(monkeypatch)
    async with delivered_horns(db, [vehicle_side], **BESIDE) as (hook, histories):
        pass
    for remote_id, history in histories.items():
        assert history[0] == "Accepted", history
        assert history[-1] == "Success", history
        assert hook.statuses_of(remote_id) == history
    assert sum(claims) == 0, "no row was claimed: the dispatcher handed them all over"


async def test_a_dispatcher_that_dies_after_its_commit_loses_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DeliveryWorker, "take", lambda self, handover: [])
    async with receiver() as hook:
        async with embedded(db, roles=[vehicle_side], delivery=SLOW_POLL, **BESIDE) as (_, tenant):
            posted = await _horns(tenant, await _callback(tenant, hook.url))
            histories = await _histories(tenant, posted)
        assert hook.requests == [], "nothing was posted: the process 'died' before its POSTs"
        clock = FakeClock(utcnow())
        async with worker(db, clock, owner="survivor") as survivor:
            assert await drain(survivor) == 0, "the rows stay leased to the dead process"
            clock.advance(SLOW_POLL["lease_s"] + 1)
            await drain(survivor)
    for remote_id, history in histories.items():
        assert hook.statuses_of(remote_id) == history


async def test_an_event_leased_elsewhere_keeps_the_later_ones_behind_it(
    db: Database,
) -> None:
    fast = {**SLOW_POLL, "poll_s": 0.05}
    async with receiver() as hook, worker(db, utcnow, owner="elsewhere") as elsewhere:
        async with embedded(db, roles=[], delivery=fast) as (_, tenant):
            posted = await _horns(tenant, await _callback(tenant, hook.url))
            held = await elsewhere.claim(100)  # the Accepted events, leased and not sent yet
        assert sorted(d.rows[0].remote_id for d in held) == sorted(posted)
        async with embedded(db, roles=[vehicle_side], delivery=fast, login="bob", **BESIDE) as (
            _,
            bob,
        ):
            # Alice's remotes, read through the app that now runs the vehicle side.
            bob.http.auth = (tenant.login, tenant.password)
            bob.http.params = {"client_id": tenant.client_id}
            tenant.http = bob.http
            histories = await _histories(tenant, posted)
            await asyncio.sleep(0.5)  # the dispatcher's worker polls ten times meanwhile
            assert hook.requests == [], "no later event overtook the Accepted held elsewhere"
            await elsewhere.record([await elsewhere.send(d) for d in held])
            await _until_delivered(hook, histories)
    for remote_id, history in histories.items():
        assert hook.statuses_of(remote_id) == history
