"""Every remote type travels API → dispatcher → in-memory link → simulated vehicle → Done."""

from __future__ import annotations

from typing import Any

import pytest

from keyfob.remotes.dispatcher import Dispatcher
from keyfob.store.engine import Database
from vehicle_support import callback_for_all, embedded, until_done

BODIES = {
    "ThermalPreconditioning": {"preconditioning": {"airConditioning": {"immediate": True}}},
    "ElectricBatteryChargingRequest": {"charging": {"preferences": {"level": "Level3"}}},
    "Horn": {"horn": {"state": "Activated"}},
    "Doors": {"door": {"state": "Unlocked"}},
    "Lights": {"lights": {"on": True}},
    "Immobilization": {"immobilization": {"activate": False}},
    "Stolen": {"stolen": {"trackingPeriod": {"running": 30, "shutdown": 120}}},
    "WakeUp": {"wakeUp": {"action": "WakeUp"}},
    "Navigation": {"navigation": {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}},
}


@pytest.mark.parametrize("remote_type", sorted(BODIES))
async def test_remote_reaches_a_final_state(db: Database, remote_type: str) -> None:
    async with embedded(db) as (_, tenant):
        cbid = await callback_for_all(tenant)
        vid = tenant.vehicles["Electric"].id
        path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        posted = await tenant.http.post(path, json=BODIES[remote_type])
        assert posted.status_code == 202, posted.text
        done = await until_done(tenant, f"{path}/{posted.json()['remoteActionId']}")
    statuses = [e["status"] for e in done["events"]]
    assert done["status"] in ("Success", "AlreadyDone"), done
    assert "SentToVehicle" in statuses
    if remote_type == "Navigation":
        assert "Accepted" not in statuses
        assert "WakingUpVehicle" not in statuses
    else:
        assert statuses[0] == "Accepted"


async def test_lock_changes_the_reported_status(db: Database) -> None:
    async with embedded(db) as (_, tenant):
        cbid = await callback_for_all(tenant)
        vid = tenant.vehicles["Thermic"].id
        path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        for state in ("Unlocked", "Locked"):
            posted = await tenant.http.post(path, json={"door": {"state": state}})
            done = await until_done(tenant, f"{path}/{posted.json()['remoteActionId']}")
            assert done["status"] in ("Success", "AlreadyDone")
            seen = await tenant.http.get(f"{tenant.fleet}/vehicles/{vid}/status")
            assert seen.status_code == 200
            assert seen.json()["doorsState"]["lockedStates"] == [state]


async def test_vehicle_messages_survive_a_failed_write(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient database failure while recording what vehicles said (a PostgreSQL
    deadlock, a dropped connection) is retried: the car's answer still ends the remote."""
    failures = {"left": 3, "seen": 0}
    original = Dispatcher._record

    def flaky(self: Dispatcher, *args: Any) -> Any:
        failures["seen"] += 1
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("the database went away for a moment")
        return original(self, *args)

    async with embedded(db) as (_, tenant):
        cbid = await callback_for_all(tenant)
        vid = tenant.vehicles["Electric"].id
        path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        monkeypatch.setattr(Dispatcher, "_record", flaky)
        posted = await tenant.http.post(path, json={"horn": {"state": "Activated"}})
        done = await until_done(tenant, f"{path}/{posted.json()['remoteActionId']}")
    assert done["status"] == "Success", done
    assert failures["left"] == 0
    assert failures["seen"] > 3, "the answer was recorded after the failed tries"
