"""Remote actions on the fleet face (§2.2): post, read, list, and what refuses a remote.

Covers every body type (valid and invalid), the vehicle's capabilities, the callback's
remoteTypes and status, the records a 202 leaves behind, and the Idempotency-Key extension.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from conftest import CALLBACK, Tenant, create_callback
from keyfob.callbacks.service import mark_failed
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock, isoformat
from keyfob.remotes.events import RemoteRef, record_event
from keyfob.runtime.tables import idempotency_keys, notifications, remote_events, remotes
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_vehicle
from keyfob.vocabulary import EventType, Motorization
from oracle_schemas import assert_conforms, errors

BASE = "https://keyfob.test/connectedcar/v3"
PROGRAM = {
    "slot": 1,
    "enabled": True,
    "recurrence": "Daily",
    "start": "PT7H",
    "occurence": {"day": ["Mon", "Fri"]},
}
POINTS = [
    {"type": "Point", "coordinates": [2.3522, 48.8566]},
    {"type": "Point", "coordinates": [5.3698, 43.2965, 12.0]},
]


def check_error(answer: httpx.Response, error: ErrorCode, *words: str) -> list[str]:
    if answer.status_code != error.status:
        return [f"status {answer.status_code} instead of {error.status}: {answer.text}"]
    data = answer.json()
    problems = errors("b2b-api", "xError", data)
    if data.get("code") != error.code:
        problems.append(f"code {data.get('code')} instead of {error.code}: {data.get('message')}")
    return problems + [
        f"message lacks {w!r}: {data['message']}" for w in words if w not in data["message"]
    ]


def assert_error(answer: httpx.Response, error: ErrorCode, *words: str) -> None:
    problems = check_error(answer, error, *words)
    assert not problems, problems


def remotes_path(tenant: Tenant, cbid: str, motorization: str = "Electric") -> str:
    return f"{tenant.fleet}/vehicles/{tenant.vehicles[motorization].id}/callbacks/{cbid}/remotes"


async def counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (remotes, remote_events, notifications, idempotency_keys)
        }


NOTHING = {"remotes": 0, "remote_events": 0, "notifications": 0, "idempotency_keys": 0}

# (name, body, RemoteType, what GET echoes as ``remote`` when it differs from the body)
VALID: list[tuple[str, dict[str, Any], str, dict[str, Any] | None]] = [
    (
        "precondition now",
        {"label": "warm", "preconditioning": {"airConditioning": {"immediate": True}}},
        "ThermalPreconditioning",
        None,
    ),
    (
        "precondition programs",
        {
            "preconditioning": {
                "airConditioning": {
                    "programs": [
                        {k: v for k, v in PROGRAM.items() if k != "recurrence"},
                        {"slot": 2, "actionsType": "Delete"},
                    ]
                }
            }
        },
        "ThermalPreconditioning",
        {
            "preconditioning": {
                "airConditioning": {
                    "programs": [
                        {**PROGRAM, "actionsType": "Set"},
                        {"slot": 2, "actionsType": "Delete", "start": "PT0S"},
                    ]
                }
            }
        },
    ),
    ("charge now", {"charging": {"immediate": True}}, "ElectricBatteryChargingRequest", None),
    ("stop charge", {"charging": {"immediate": False}}, "ElectricBatteryChargingRequest", None),
    (
        "delayed charge",
        {"charging": {"schedule": {"nextDelayedTime": "2026-01-02T22:30:00Z"}}},
        "ElectricBatteryChargingRequest",
        None,
    ),
    (
        "charge programs",
        {
            "charging": {
                "schedule": {
                    "programs": [
                        {"slot": 1, "enabled": True, "start": "PT22H", "end": "PT6H"},
                    ]
                }
            }
        },
        "ElectricBatteryChargingRequest",
        None,
    ),
    (
        "charge preferences",
        {"charging": {"preferences": {"level": "Level3", "type": "Partial"}}},
        "ElectricBatteryChargingRequest",
        None,
    ),
    (
        "deprecated delayed charge",
        {"charging": {"nextDelayedTime": "2026-01-02T22:30:00Z"}},
        "ElectricBatteryChargingRequest",
        None,
    ),
    ("lock", {"door": {"state": "Locked"}}, "Doors", None),
    ("forced unlock", {"door": {"state": "Unlocked", "forced": True}}, "Doors", None),
    ("horn", {"horn": {"state": "Activated"}}, "Horn", None),
    ("lights", {"lights": {"on": True}}, "Lights", None),
    ("wake up", {"wakeUp": {}}, "WakeUp", {"wakeUp": {"action": "WakeUp"}}),
    ("navigate", {"navigation": {"positions": POINTS}}, "Navigation", None),
    ("immobilize", {"immobilization": {"activate": True}}, "Immobilization", None),
    ("declare stolen", {"stolen": {"stolen": True}}, "Stolen", None),
    (
        "tracking period",
        {"stolen": {"trackingPeriod": {"running": 30, "shutdown": 120}}},
        "Stolen",
        None,
    ),
    ("stolen immobilized", {"stolen": {"immobilization": {"activate": True}}}, "Stolen", None),
]


async def test_every_body_type_is_accepted_stored_and_read_back(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    for name, data, remote_type, echoed in VALID:
        posted = await tenant.http.post(url, json=data)
        assert posted.status_code == 202, f"{name}: {posted.text}"
        assert posted.headers["content-type"] == "application/hal+json"
        answer = posted.json()
        assert_conforms("b2b-api", "RemotePostResponse", answer)
        assert answer["type"] == remote_type, name
        rid = answer["remoteActionId"]
        assert answer["_links"]["remote"]["href"] == f"https://keyfob.test{url}/{rid}", name

        read = await tenant.http.get(f"{url}/{rid}")
        assert read.status_code == 200, f"{name}: {read.text}"
        action = read.json()
        assert_conforms("b2b-api", "RemoteAction", action)
        assert action["type"] == remote_type, name
        assert action["remote"] == (echoed or data), name
        first = "CheckingVehicle" if remote_type == "Navigation" else "Accepted"
        assert action["status"] == first, name
        assert [(e["sequence"], e["type"], e["status"]) for e in action["events"]] == [
            (1, "Pending", first)
        ], name


INVALID: list[tuple[str, object, ErrorCode, tuple[str, ...]]] = [
    ("not an object", [{"horn": {"state": "Activated"}}], ErrorCode.INVALID_BODY, ("JSON object",)),
    ("no action", {"label": "x"}, ErrorCode.INVALID_BODY, ("exactly one action",)),
    (
        "two actions",
        {"horn": {"state": "Activated"}, "door": {"state": "Locked"}},
        ErrorCode.INVALID_BODY,
        ("exactly one action", "horn", "door"),
    ),
    ("unknown member", {"teleport": {}}, ErrorCode.INVALID_BODY, ("teleport",)),
    (
        "label not text",
        {"label": 5, "horn": {"state": "Activated"}},
        ErrorCode.INVALID_BODY,
        ("label",),
    ),
    (
        "end-user attributes",
        {"attributes": [], "horn": {"state": "Activated"}},
        ErrorCode.INVALID_BODY,
        ("attributes",),
    ),
    ("null action", {"door": None}, ErrorCode.INVALID_BODY, ("door",)),
    ("door state", {"door": {"state": "Open"}}, ErrorCode.INVALID_BODY, ("door.state", "Open")),
    ("door no state", {"door": {}}, ErrorCode.INVALID_BODY, ("door.state",)),
    ("door extra", {"door": {"state": "Locked", "colour": 1}}, ErrorCode.INVALID_BODY, ("colour",)),
    ("horn state", {"horn": {"state": "Loud"}}, ErrorCode.INVALID_BODY, ("horn.state",)),
    ("lights text", {"lights": {"on": "yes"}}, ErrorCode.INVALID_BODY, ("lights.on",)),
    ("wake up action", {"wakeUp": {"action": "Sleep"}}, ErrorCode.INVALID_BODY, ("wakeUp.action",)),
    (
        "immobilization empty",
        {"immobilization": {}},
        ErrorCode.INVALID_BODY,
        ("immobilization.activate",),
    ),
    (
        "no positions",
        {"navigation": {"positions": []}},
        ErrorCode.INVALID_BODY,
        ("navigation.positions",),
    ),
    (
        "eleven positions",
        {"navigation": {"positions": [POINTS[0]] * 11}},
        ErrorCode.INVALID_BODY,
        ("navigation.positions",),
    ),
    (
        "latitude out of range",
        {"navigation": {"positions": [{"type": "Point", "coordinates": [2.0, 95.0]}]}},
        ErrorCode.INVALID_BODY,
        ("navigation.positions[0].coordinates[1]", "latitude"),
    ),
    (
        "longitude out of range",
        {"navigation": {"positions": [{"type": "Point", "coordinates": [200.0, 45.0]}]}},
        ErrorCode.INVALID_BODY,
        ("navigation.positions[0].coordinates[0]", "longitude"),
    ),
    (
        "not a point",
        {"navigation": {"positions": [{"type": "Line", "coordinates": [2.0, 45.0]}]}},
        ErrorCode.INVALID_BODY,
        ("navigation.positions[0].type",),
    ),
    (
        "air conditioning empty",
        {"preconditioning": {"airConditioning": {}}},
        ErrorCode.INVALID_BODY,
        ("preconditioning.airConditioning",),
    ),
    (
        "program slot 5",
        {"preconditioning": {"airConditioning": {"programs": [{**PROGRAM, "slot": 5}]}}},
        ErrorCode.INVALID_BODY,
        ("preconditioning.airConditioning.programs[0].slot",),
    ),
    (
        "slot used twice",
        {"preconditioning": {"airConditioning": {"programs": [PROGRAM, PROGRAM]}}},
        ErrorCode.INVALID_BODY,
        ("programs[1].slot",),
    ),
    (
        "set without start",
        {
            "preconditioning": {
                "airConditioning": {
                    "programs": [{k: v for k, v in PROGRAM.items() if k != "start"}]
                }
            }
        },
        ErrorCode.INVALID_BODY,
        ("preconditioning.airConditioning.programs[0]", "start"),
    ),
    (
        "clock time instead of duration",
        {"preconditioning": {"airConditioning": {"programs": [{**PROGRAM, "start": "07:00"}]}}},
        ErrorCode.INVALID_BODY,
        ("programs[0].start",),
    ),
    ("charging empty", {"charging": {}}, ErrorCode.INVALID_BODY, ("charging",)),
    (
        "preferences with immediate",
        {"charging": {"immediate": True, "preferences": {"level": "Level1"}}},
        ErrorCode.INVALID_BODY,
        ("charging.preferences",),
    ),
    (
        "schedule with both modes",
        {
            "charging": {
                "schedule": {"nextDelayedTime": "2026-01-02T22:30:00Z", "programs": [PROGRAM]}
            }
        },
        ErrorCode.INVALID_BODY,
        ("charging.schedule",),
    ),
    (
        "delayed time not a timestamp",
        {"charging": {"schedule": {"nextDelayedTime": "tomorrow"}}},
        ErrorCode.INVALID_BODY,
        ("charging.schedule.nextDelayedTime",),
    ),
    (
        "charge level",
        {"charging": {"preferences": {"level": "Level9"}}},
        ErrorCode.INVALID_BODY,
        ("charging.preferences.level",),
    ),
    ("stolen empty", {"stolen": {}}, ErrorCode.INVALID_BODY, ("stolen",)),
    (
        "stolen two members",
        {"stolen": {"stolen": True, "immobilization": {"activate": True}}},
        ErrorCode.INVALID_BODY,
        ("stolen", "exactly one"),
    ),
    (
        "tracking too fast",
        {"stolen": {"trackingPeriod": {"running": 4}}},
        ErrorCode.INVALID_BODY,
        ("stolen.trackingPeriod.running",),
    ),
    (
        "legacy preconditioning, decision 25",
        {"preonditionning": {"airConditioning": {"immediate": True}}},
        ErrorCode.LEGACY_FIELD,
        ("preonditionning", "preconditioning"),
    ),
    ("legacy lights", {"ligths": {"on": True}}, ErrorCode.LEGACY_FIELD, ("ligths", "lights")),
    ("legacy state", {"state": {"action": "state"}}, ErrorCode.LEGACY_FIELD, ("state", "wakeUp")),
]


async def test_every_invalid_body_is_a_400_naming_the_field_and_stores_nothing(
    tenant: Tenant, db: Database
) -> None:
    url = remotes_path(tenant, await create_callback(tenant))
    failures: list[str] = []
    for name, data, error, words in INVALID:
        answer = await tenant.http.post(url, json=data)
        failures += [f"{name}: {p}" for p in check_error(answer, error, *words)]
    assert not failures, "\n".join(failures)
    assert await counts(db) == NOTHING


async def test_what_the_vehicle_cannot_do_is_a_400_and_stores_nothing(
    tenant: Tenant, db: Database, clock: FakeClock
) -> None:
    cbid = await create_callback(tenant)
    thermic = remotes_path(tenant, cbid, "Thermic")
    for data, remote_type in (
        ({"preconditioning": {"airConditioning": {"immediate": True}}}, "ThermalPreconditioning"),
        ({"charging": {"immediate": True}}, "ElectricBatteryChargingRequest"),
    ):
        answer = await tenant.http.post(thermic, json=data)
        assert_error(answer, ErrorCode.NOT_SUPPORTED_BY_VEHICLE, remote_type, "Thermic")

    async with db.transaction() as conn:
        small = await create_vehicle(
            conn,
            fleet_id=tenant.fleet_id,
            vin="VF3SMALL000000001",
            motorization="Electric",
            capabilities=capabilities_for(
                Motorization.ELECTRIC, programs_size=1, immobilization=False
            ),
            now=clock(),
        )
    url = f"{tenant.fleet}/vehicles/{small.id}/callbacks/{cbid}/remotes"
    two_slots = {"preconditioning": {"airConditioning": {"programs": [{**PROGRAM, "slot": 2}]}}}
    assert_error(
        await tenant.http.post(url, json=two_slots),
        ErrorCode.NOT_SUPPORTED_BY_VEHICLE,
        "preconditioning.airConditioning.programs[0].slot",
    )
    assert_error(
        await tenant.http.post(url, json={"immobilization": {"activate": True}}),
        ErrorCode.NOT_SUPPORTED_BY_VEHICLE,
        "Immobilization",
    )
    assert await counts(db) == NOTHING
    door = await tenant.http.post(thermic, json={"door": {"state": "Locked"}})
    assert door.status_code == 202, "a thermic car still locks its doors"


async def test_remote_type_must_be_in_the_callback_remote_types(
    tenant: Tenant, db: Database
) -> None:
    cbid = await create_callback(tenant, {**CALLBACK, "remoteTypes": ["Horn", "Lights"]})
    answer = await tenant.http.post(remotes_path(tenant, cbid), json={"door": {"state": "Locked"}})
    assert_error(answer, ErrorCode.REMOTE_TYPE_NOT_IN_CALLBACK, "Doors", "Horn, Lights")
    assert await counts(db) == NOTHING
    horn = await tenant.http.post(remotes_path(tenant, cbid), json={"horn": {"state": "Activated"}})
    assert horn.status_code == 202


async def test_paused_or_failed_callback_refuses_remotes_with_409(
    tenant: Tenant, db: Database, clock: FakeClock
) -> None:
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    status_url = f"{tenant.fleet}/remote/callbacks/{cbid}/status"
    horn = {"horn": {"state": "Activated"}}
    assert (await tenant.http.put(status_url, json={"status": "Paused"})).status_code == 202
    assert_error(await tenant.http.post(url, json=horn), ErrorCode.CALLBACK_NOT_RUNNING, "Paused")

    async with db.transaction() as conn:
        await mark_failed(conn, callback_id=cbid, now=clock())
    failed = (await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}")).json()
    assert_conforms("b2b-api", "RemoteCallback", failed)
    assert failed["status"] == "Failed"
    assert_error(await tenant.http.post(url, json=horn), ErrorCode.CALLBACK_NOT_RUNNING, "Failed")
    assert await counts(db) == NOTHING

    assert (await tenant.http.put(status_url, json={"status": "Running"})).status_code == 202
    assert (await tenant.http.post(url, json=horn)).status_code == 202


async def test_a_202_stores_the_remote_its_first_event_and_its_notification(
    tenant: Tenant, db: Database, clock: FakeClock
) -> None:
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    first = (await tenant.http.post(url, json={"door": {"state": "Locked"}})).json()
    clock.advance(5)
    second = (await tenant.http.post(url, json={"lights": {"on": True}})).json()

    async with db.read() as conn:
        stored = (await conn.execute(select(remotes).order_by(remotes.c.created_at))).all()
        events = (await conn.execute(select(remote_events))).all()
        queued = (await conn.execute(select(notifications))).all()
    assert [(r.id, r.type, r.status, r.last_seq) for r in stored] == [
        (first["remoteActionId"], "Doors", "Accepted", 1),
        (second["remoteActionId"], "Lights", "Accepted", 1),
    ]
    assert sorted((e.remote_id, e.seq, e.type, e.status) for e in events) == sorted(
        (r.id, 1, "Pending", "Accepted") for r in stored
    )
    assert sorted((n.remote_id, n.event_id, n.callback_id) for n in queued) == sorted(
        (e.remote_id, e.id, cbid) for e in events
    )

    read = (await tenant.http.get(f"{url}/{second['remoteActionId']}")).json()
    assert read["events"][0]["eventDate"] == isoformat(clock())
    assert read["_links"] == {
        "self": {"href": f"https://keyfob.test{url}/{second['remoteActionId']}"},
        "fleet": {"href": f"{BASE}/fleets/{tenant.fleet_id}"},
        "callback": {"href": f"{BASE}/fleets/{tenant.fleet_id}/remote/callbacks/{cbid}"},
    }


async def test_get_shows_the_latest_status_and_the_ordered_history(
    tenant: Tenant, db: Database, clock: FakeClock
) -> None:
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    rid = (await tenant.http.post(url, json={"door": {"state": "Locked"}})).json()["remoteActionId"]
    vin = tenant.vehicles["Electric"].vin
    steps = [
        (EventType.PENDING, "WakingUpVehicle", None),
        (EventType.PENDING, "SentToVehicle", None),
        (EventType.DONE, "Failed", "DoorsOpen"),
    ]
    for seq, (kind, status, cause) in enumerate(steps, start=1):
        clock.advance(2)
        async with db.transaction() as conn:
            await record_event(
                conn,
                remote=RemoteRef(rid, cbid, vin, "Doors", seq),
                event_type=kind,
                status=status,
                now=clock(),
                failure_cause=cause,
            )

    action = (await tenant.http.get(f"{url}/{rid}")).json()
    assert_conforms("b2b-api", "RemoteAction", action)
    assert (action["status"], action["failureCause"]) == ("Failed", "DoorsOpen")
    history = [
        (e["sequence"], e["type"], e["status"], e.get("failureCause")) for e in action["events"]
    ]
    assert history == [
        (1, "Pending", "Accepted", None),
        (2, "Pending", "WakingUpVehicle", None),
        (3, "Pending", "SentToVehicle", None),
        (4, "Done", "Failed", "DoorsOpen"),
    ]
    dates = [e["eventDate"] for e in action["events"]]
    assert dates == sorted(dates)
    assert len({e["eventId"] for e in action["events"]}) == 4
    listed = (await tenant.http.get(url)).json()["_embedded"]["remoteActions"]
    assert [(a["status"], a["failureCause"]) for a in listed] == [("Failed", "DoorsOpen")]
    assert "events" not in listed[0], "the history is read one remote at a time"


async def test_list_shows_only_this_vehicle_and_callback_in_creation_order(
    tenant: Tenant, clock: FakeClock
) -> None:
    cbid = await create_callback(tenant)
    other_cb = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    empty = await tenant.http.get(url)
    assert empty.status_code == 200, empty.text
    assert_conforms("b2b-api", "RemoteActions", empty.json())
    assert empty.json()["_embedded"] == {"remoteActions": []}

    ids = []
    for data in ({"horn": {"state": "Activated"}}, {"door": {"state": "Locked"}}):
        ids.append((await tenant.http.post(url, json=data)).json()["remoteActionId"])
        clock.advance(1)
    await tenant.http.post(remotes_path(tenant, cbid, "Hybrid"), json={"wakeUp": {}})
    await tenant.http.post(remotes_path(tenant, other_cb), json={"wakeUp": {}})

    listed = await tenant.http.get(url)
    assert listed.headers["content-type"] == "application/hal+json"
    page = listed.json()
    assert_conforms("b2b-api", "RemoteActions", page)
    items = page["_embedded"]["remoteActions"]
    assert [(a["remoteActionId"], a["type"], a["status"]) for a in items] == [
        (ids[0], "Horn", "Accepted"),
        (ids[1], "Doors", "Accepted"),
    ]
    assert page["total"] == 2


async def test_unknown_or_malformed_ids_on_remote_paths(tenant: Tenant, db: Database) -> None:
    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    horn = {"horn": {"state": "Activated"}}
    fleet = tenant.fleet
    cases = [
        (
            f"/connectedcar/v3/fleets/nope/vehicles/{vid}/callbacks/{cbid}/remotes",
            ErrorCode.FLEET_NOT_FOUND,
        ),
        (f"{fleet}/vehicles/nope/callbacks/{cbid}/remotes", ErrorCode.VEHICLE_NOT_FOUND),
        (f"{fleet}/vehicles/{vid}/callbacks/abc123/remotes", ErrorCode.CALLBACK_NOT_FOUND),
        (f"{fleet}/vehicles/{vid}/callbacks/xyz!/remotes", ErrorCode.INVALID_PATH_ID),
    ]
    failures = []
    for url, error in cases:
        for answer in (
            await tenant.http.post(url, json=horn),
            await tenant.http.get(url),
            await tenant.http.get(f"{url}/abcdef"),
        ):
            failures += [f"{answer.request.method} {url}: {p}" for p in check_error(answer, error)]
    url = remotes_path(tenant, cbid)
    failures += check_error(await tenant.http.get(f"{url}/0123abcd"), ErrorCode.REMOTE_NOT_FOUND)
    failures += check_error(await tenant.http.get(f"{url}/not-an-id!"), ErrorCode.INVALID_PATH_ID)
    assert not failures, "\n".join(failures)
    assert await counts(db) == NOTHING


# -- Idempotency-Key (extension) -----------------------------------------------------------


async def test_same_key_and_body_replay_the_first_answer(
    tenant: Tenant, db: Database, clock: FakeClock
) -> None:
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    headers = {"Idempotency-Key": "order-42"}
    first = await tenant.http.post(url, json={"door": {"state": "Locked"}}, headers=headers)
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    clock.advance(3600)
    again = await tenant.http.post(url, json={"door": {"state": "Locked"}}, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await counts(db))["remotes"] == 1

    changed = await tenant.http.post(url, json={"door": {"state": "Unlocked"}}, headers=headers)
    assert_error(changed, ErrorCode.IDEMPOTENCY_KEY_REUSED, "Idempotency-Key")
    other_car = remotes_path(tenant, cbid, "Hybrid")
    moved = await tenant.http.post(other_car, json={"door": {"state": "Locked"}}, headers=headers)
    assert_error(moved, ErrorCode.IDEMPOTENCY_KEY_REUSED)
    assert (await counts(db))["remotes"] == 1

    clock.advance(23 * 3600 + 1)
    later = await tenant.http.post(url, json={"door": {"state": "Locked"}}, headers=headers)
    assert later.status_code == 202
    assert later.json()["remoteActionId"] != first.json()["remoteActionId"], "keys last 24 h"
    assert (await counts(db))["remotes"] == 2


async def test_a_replay_answers_even_after_the_callback_was_paused(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    headers = {"Idempotency-Key": "k1"}
    first = await tenant.http.post(url, json={"horn": {"state": "Activated"}}, headers=headers)
    await tenant.http.put(
        f"{tenant.fleet}/remote/callbacks/{cbid}/status", json={"status": "Paused"}
    )
    again = await tenant.http.post(url, json={"horn": {"state": "Activated"}}, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["remoteActionId"] == first.json()["remoteActionId"]


async def test_keys_belong_to_one_partner_and_must_be_sane(
    tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    headers = {"Idempotency-Key": "shared-name"}
    horn = {"horn": {"state": "Activated"}}
    mine = await tenant.http.post(
        remotes_path(tenant, await create_callback(tenant)), json=horn, headers=headers
    )
    theirs = await other_tenant.http.post(
        remotes_path(other_tenant, await create_callback(other_tenant)), json=horn, headers=headers
    )
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["remoteActionId"] != theirs.json()["remoteActionId"]

    url = remotes_path(tenant, await create_callback(tenant))
    for key in ("", "x" * 256):
        answer = await tenant.http.post(url, json=horn, headers={"Idempotency-Key": key})
        assert_error(answer, ErrorCode.BAD_REQUEST, "Idempotency-Key")
    assert (await counts(db))["remotes"] == 2


async def test_concurrent_retries_with_one_key_store_one_remote(
    tenant: Tenant, db: Database
) -> None:
    url = remotes_path(tenant, await create_callback(tenant))
    headers = {"Idempotency-Key": "twin"}
    answers = await asyncio.gather(
        *(tenant.http.post(url, json={"wakeUp": {}}, headers=headers) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    assert len({a.json()["remoteActionId"] for a in answers}) == 1
    assert (await counts(db))["remotes"] == 1


async def test_remotes_posted_in_one_instant_list_in_the_order_they_were_posted(
    tenant: Tenant,
) -> None:
    """The list sorts by creation time, then id: within one millisecond (a busy client) the
    ids follow the order the POSTs arrived in."""
    cbid = await create_callback(tenant)
    url = remotes_path(tenant, cbid)
    posted = []
    for _ in range(12):
        answer = await tenant.http.post(url, json={"horn": {"state": "Activated"}})
        assert answer.status_code == 202, answer.text
        posted.append(answer.json()["remoteActionId"])
    page = (await tenant.http.get(url, params={"pageSize": 50})).json()
    assert [a["remoteActionId"] for a in page["_embedded"]["remoteActions"]] == posted
