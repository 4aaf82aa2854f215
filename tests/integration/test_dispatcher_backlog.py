"""What vehicles say survives a database outage of any length, in bounded memory.

The dispatcher's store call fails for seconds (far longer than the retries that used to give
up and drop the batch) while simulated cars carry out remotes and answer. Every remote must
end with the car's own answer once the database heals, and the dispatcher must hold at most
its bound of unstored messages meanwhile: past it, the link stops handing messages over. A
store that hangs instead of failing (a connection the database stopped answering) must not let
the commands' deadlines overtake the answers it holds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from keyfob.remotes.dispatcher import Dispatcher, DispatcherOptions
from keyfob.runtime import vehicle_role as role
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicle_states
from vehicle_support import callback_for_all, embedded, until_done

BOUND = 3
BODIES = [{"horn": {"state": "Activated"}}, {"lights": {"on": True}}, {"door": {"state": "Locked"}}]


async def test_every_answer_is_recorded_after_a_long_outage_with_a_bounded_backlog(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = role.dispatcher_options

    def small_backlog(settings: Any, *, shared: bool) -> DispatcherOptions:
        found = options(settings, shared=shared)
        found.max_backlog = BOUND
        return found

    monkeypatch.setattr(role, "dispatcher_options", small_backlog)
    outage = {"on": False, "failed": 0}
    record = Dispatcher._record

    def failing(self: Dispatcher, *args: Any) -> Any:
        if outage["on"]:
            outage["failed"] += 1
            raise ConnectionError("the database is unreachable (injected)")
        return record(self, *args)

    monkeypatch.setattr(Dispatcher, "_record", failing)
    backlogs: list[int] = []
    waits: list[float] = []
    on_uplink = Dispatcher._on_uplink

    async def watched(self: Dispatcher, topic: str, payload: bytes) -> Any:
        started = time.perf_counter()
        receipt = await on_uplink(self, topic, payload)
        waits.append(time.perf_counter() - started)
        backlogs.append(self.backlog)
        return receipt

    monkeypatch.setattr(Dispatcher, "_on_uplink", watched)
    async with embedded(db, vehicle={"command_timeout_s": 30.0}) as (_, tenant):
        cbid = await callback_for_all(tenant)
        paths = []
        outage["on"] = True
        for vehicle in tenant.vehicles.values():
            for body in BODIES:
                path = f"{tenant.fleet}/vehicles/{vehicle.id}/callbacks/{cbid}/remotes"
                posted = await tenant.http.post(path, json=body)
                assert posted.status_code == 202, posted.text
                paths.append(f"{path}/{posted.json()['remoteActionId']}")
        await asyncio.sleep(3.0)  # every car has answered by now; nothing could be stored
        outage["on"] = False
        finished = [await until_done(tenant, path, timeout=20) for path in paths]
    assert outage["failed"] >= 3, "the store failed again and again for seconds"
    assert len(finished) == 3 * len(BODIES)
    assert {body["status"] for body in finished} <= {"Success", "AlreadyDone"}, [
        (body["status"], body.get("failureCause")) for body in finished
    ]
    assert max(backlogs) <= BOUND, "the dispatcher held more than its bound"
    assert max(waits) > 1.0, "at the bound, the link waited instead of handing more over"


async def test_a_deadline_that_passes_while_answers_cannot_be_stored_waits_for_them(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cars answer at once, but the store fails until well past the commands' deadline:
    the answers wait in the inbox, so the deadline must wait too, and each remote ends with
    its car's answer, not ``VehicleConnectionTimeout``."""
    outage = {"on": False}
    record = Dispatcher._record

    def failing(self: Dispatcher, *args: Any) -> Any:
        if outage["on"]:
            raise ConnectionError("the database is unreachable (injected)")
        return record(self, *args)

    monkeypatch.setattr(Dispatcher, "_record", failing)
    async with embedded(db, vehicle={"command_timeout_s": 1.0}) as (_, tenant):
        cbid = await callback_for_all(tenant)
        paths = []
        outage["on"] = True
        for vehicle in tenant.vehicles.values():
            path = f"{tenant.fleet}/vehicles/{vehicle.id}/callbacks/{cbid}/remotes"
            posted = await tenant.http.post(path, json=BODIES[0])
            assert posted.status_code == 202, posted.text
            paths.append(f"{path}/{posted.json()['remoteActionId']}")
        await asyncio.sleep(2.5)  # past every deadline; the answers are in the inbox
        outage["on"] = False
        finished = [await until_done(tenant, path, timeout=20) for path in paths]
    assert [(body["status"], body.get("failureCause")) for body in finished] == [
        ("Success", None)
    ] * len(paths)


async def test_a_deadline_that_passes_while_the_store_hangs_waits_for_the_answers(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store of the cars' answers hangs, as on a connection the database stopped answering
    (it fails only at the statement time-out), while the advancer's own calls work: the
    deadlines pass with the answers held. Each remote must end with its car's answer once the
    store goes through, not ``VehicleConnectionTimeout``."""
    armed, hanging, released = asyncio.Event(), asyncio.Event(), asyncio.Event()
    process = Dispatcher._process

    async def hung(self: Dispatcher, batch: Any) -> int:
        if armed.is_set() and not released.is_set():
            hanging.set()
            await released.wait()
        return await process(self, batch)

    monkeypatch.setattr(Dispatcher, "_process", hung)
    async with embedded(db, vehicle={"command_timeout_s": 1.0}) as (_, tenant):
        cbid = await callback_for_all(tenant)
        await online(db, len(tenant.vehicles))  # commands go out at once, no wake-up
        armed.set()
        paths = []
        for vehicle in tenant.vehicles.values():
            path = f"{tenant.fleet}/vehicles/{vehicle.id}/callbacks/{cbid}/remotes"
            posted = await tenant.http.post(path, json=BODIES[0])
            assert posted.status_code == 202, posted.text
            paths.append(f"{path}/{posted.json()['remoteActionId']}")
        async with asyncio.timeout(10):
            await hanging.wait()
        await asyncio.sleep(2.5)  # past every deadline, the advancer running all along
        released.set()
        finished = [await until_done(tenant, path, timeout=20) for path in paths]
    assert [(body["status"], body.get("failureCause")) for body in finished] == [
        ("Success", None)
    ] * len(paths)


async def online(db: Database, count: int) -> None:
    """Until ``count`` vehicles are known to be online."""
    async with asyncio.timeout(10):
        while True:
            async with db.read() as conn:
                found = (
                    await conn.execute(
                        select(func.count())
                        .select_from(vehicle_states)
                        .where(vehicle_states.c.presence == "online")
                    )
                ).scalar_one()
            if found >= count:
                return
            await asyncio.sleep(0.05)
