"""What a receiver gets: the template's RemoteEvents body, attributes and rendered variables."""

from __future__ import annotations

from typing import Any

from delivery_flow import DOORS, delivery_flow

from keyfob import __version__
from keyfob.kit.clock import FakeClock, isoformat
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms

CONTRACT_EVENT_KEYS = {"remoteActionId", "vin", "eventDate", "remoteType", "eventStatus"}
EXTENSION_KEYS = {"eventId", "sequence"}


async def test_a_whole_lifecycle_arrives_in_the_template_shape(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        rid = await flow.remote(cbid, "Hybrid")
        accepted_at = clock()
        flow.clock.advance(2)
        await flow.pending(rid, "WakingUpVehicle")
        flow.clock.advance(3)
        await flow.pending(rid, "SentToVehicle")
        flow.clock.advance(4)
        await flow.done(
            rid, "Failed", failure_cause="VehicleError", feedback_detail="CIDBlacklisted"
        )
        done_at = clock()
        assert await flow.drain() == 4
    bodies = flow.hook.bodies
    for body in bodies:
        assert_conforms("b2b-webhook", "RemoteEvents", body)
        assert set(body) == {"callbackId", "attributes", "events"}
        assert body["callbackId"] == cbid
        assert body["attributes"] == []
        [event] = body["events"]
        assert set(event) == CONTRACT_EVENT_KEYS | EXTENSION_KEYS
        assert event["remoteActionId"] == rid
        assert event["vin"] == flow.tenant.vehicles["Hybrid"].vin
        assert event["remoteType"] == "Doors"
    events = [b["events"][0] for b in bodies]
    assert [e["eventStatus"] for e in events] == [
        {"type": "Pending", "status": "Accepted"},
        {"type": "Pending", "status": "WakingUpVehicle"},
        {"type": "Pending", "status": "SentToVehicle"},
        {
            "type": "Done",
            "status": "Failed",
            "failureCause": "VehicleError",
            "feedbackDetail": "CIDBlacklisted",
        },
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4]
    assert len({e["eventId"] for e in events}) == 4
    assert events[0]["eventDate"] == isoformat(accepted_at)
    assert events[-1]["eventDate"] == isoformat(done_at)


async def test_event_ids_match_the_remote_history(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        rid = await flow.remote(cbid)
        await flow.done(rid, "Success", feedback_detail="NoCIDBlacklisted")
        await flow.drain()
        vid = flow.tenant.vehicles["Electric"].id
        answer = await flow.tenant.http.get(
            f"{flow.tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes/{rid}"
        )
    history = answer.json()["events"]
    posted = flow.hook.events
    assert len(history) == len(posted) == 2
    assert posted[1]["eventStatus"] == {
        "type": "Done",
        "status": "Success",
        "feedbackDetail": "NoCIDBlacklisted",
    }
    assert [e["eventId"] for e in posted] == [e["eventId"] for e in history]


async def test_attributes_become_headers_query_and_body(db: Database, clock: FakeClock) -> None:
    attributes = [
        {"type": "Header", "key": "Authorization", "value": "Bearer s3cret"},
        {"type": "Header", "key": "X-Vehicle_Id", "value": "$VIN"},
        {"type": "Header", "key": "X-Route", "value": "${fleetID}/${callbackID}"},
        {"type": "Query", "key": "kind", "value": "$remoteType"},
        {"type": "Query", "key": "price", "value": "$$5"},
        {"type": "Body", "key": "tenant", "value": "acme"},
        {"type": "Body", "key": "car", "value": "vehicle-$vin"},
    ]
    async with delivery_flow(db, clock) as flow:
        target = flow.hook.url + "?static=1"
        cbid = (await flow.callback(target, attributes=attributes))["callbackId"]
        await flow.remote(cbid, "Thermic", {"horn": {"state": "Activated"}})
        assert await flow.drain() == 1
    [request] = flow.hook.requests
    vin = flow.tenant.vehicles["Thermic"].vin
    headers = request["headers"]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["X-Vehicle_Id"] == vin
    assert headers["X-Route"] == f"{flow.tenant.fleet_id}/{cbid}"
    assert not any(name.lower().startswith("x-x-") for name in headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"keyfob/{__version__}"
    assert request["path"] == "/hook"
    assert request["query"] == {"static": "1", "kind": "Horn", "price": "$5"}
    body = request["json"]
    assert_conforms("b2b-webhook", "RemoteEvents", body)
    assert body["attributes"] == [
        {"key": "tenant", "value": "acme"},
        {"key": "car", "value": f"vehicle-{vin}"},
    ]


async def test_a_replaced_callback_renders_its_new_attributes(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        first = [{"type": "Header", "key": "X-Version", "value": "one"}]
        cbid = (await flow.callback(attributes=first))["callbackId"]
        rid = await flow.remote(cbid)
        await flow.drain()
        replacement: dict[str, Any] = {
            "callback": {
                "webhook": {
                    "target": flow.hook.url,
                    "name": "hook",
                    "attributes": [{"type": "Header", "key": "X-Version", "value": "two"}],
                }
            },
            "remoteTypes": ["Doors"],
        }
        answer = await flow.tenant.http.put(flow.path(cbid), json=replacement)
        assert answer.status_code == 202, answer.text
        await flow.done(rid)
        await flow.drain()
    assert [r["headers"]["X-Version"] for r in flow.hook.requests] == ["one", "two"]


async def test_each_remote_is_posted_with_its_own_vehicle_and_type(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        attributes = [{"type": "Header", "key": "X-Vehicle", "value": "$vin"}]
        cbid = (await flow.callback(attributes=attributes))["callbackId"]
        await flow.remote(cbid, "Electric", DOORS)
        await flow.remote(cbid, "Hybrid", {"lights": {"on": True}})
        assert await flow.drain() == 2
    seen = {
        (
            r["headers"]["X-Vehicle"],
            r["json"]["events"][0]["vin"],
            r["json"]["events"][0]["remoteType"],
        )
        for r in flow.hook.requests
    }
    electric, hybrid = flow.tenant.vehicles["Electric"].vin, flow.tenant.vehicles["Hybrid"].vin
    assert seen == {(electric, electric, "Doors"), (hybrid, hybrid, "Lights")}
