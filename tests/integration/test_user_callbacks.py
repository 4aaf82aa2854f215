"""User callbacks on the user face (§2.3): create, read, list, replace, pause, delete.

Every answer is checked against the b2c schemas (``tests/oracle/b2c-api.json``) and its HAL
links against what the b2c schemas have (no ``fleet`` link). Tenancy: a callback is seen only by
the user and OAuth client that created it; nobody else, and no partner credentials, reach it.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.runtime.tables import callbacks
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms, errors
from user_face import BASE, V4, Stage, user_stage

GATEWAY = {"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "Token is invalid"}
BODY: dict[str, Any] = {
    "label": "home assistant",
    "type": ["Remote"],
    "callback": {
        "webhook": {
            "name": "ha",
            "target": "https://ha.example.com/api/webhook/abc",
            "attributes": [{"type": "Header", "key": "empty_but_required", "value": "."}],
        }
    },
}


def assert_error(answer: httpx.Response, error: ErrorCode, *words: str) -> None:
    assert answer.status_code == error.status, answer.text
    data = answer.json()
    assert not errors("b2c-api", "xError", data), data
    assert data["code"] == error.code, data
    for word in words:
        assert word in data["message"], data["message"]


async def stored(db: Database) -> int:
    async with db.read() as conn:
        count: int = (await conn.execute(select(func.count()).select_from(callbacks))).scalar_one()
    return count


def path(cbid: str = "") -> str:
    return f"{V4}/user/callbacks" + (f"/{cbid}" if cbid else "")


async def create(stage: Stage, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = await stage.http.post(path(), json=body or BODY)
    assert answer.status_code == 202, answer.text
    created: dict[str, Any] = answer.json()
    return created


# -- the life of one callback --------------------------------------------------------------


async def test_create_answers_202_and_get_echoes_what_was_sent(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        answer = await stage.http.post(path(), json=BODY)
        assert answer.status_code == 202, answer.text
        assert answer.headers["content-type"] == "application/hal+json"
        assert answer.headers["x-ratelimit-limit-1"], "the fleet face's rate headers, here too"
        ref = answer.json()
        assert_conforms("b2c-api", "CallbackRef", ref)
        cbid = ref["callbackId"]
        assert ref["_links"] == {"callback": {"href": f"{BASE}/user/callbacks/{cbid}"}}
        assert ref["status"] == "Running"
        assert ref["secret"].startswith("whsec_"), "the signing secret, once"

        read = await stage.http.get(path(cbid))
        assert read.status_code == 200, read.text
        found = read.json()
        assert_conforms("b2c-api", "UserCallback", found)
        assert found == {
            "_links": {"self": {"href": f"{BASE}/user/callbacks/{cbid}"}},
            "label": "home assistant",
            "id": cbid,
            "subscribe": BODY,
            "status": "Running",
        }


async def test_replace_pause_resume_and_delete(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await create(stage))["callbackId"]
        changed = {
            "callback": {"webhook": {"name": "ha", "target": "https://ha.example.com/other"}}
        }
        replaced = await stage.http.put(path(cbid), json=changed)
        assert replaced.status_code == 202, replaced.text
        assert_conforms("b2c-api", "CallbackRef", replaced.json())
        assert "secret" not in replaced.json()
        found = (await stage.http.get(path(cbid))).json()
        assert found["subscribe"]["callback"]["webhook"]["target"] == "https://ha.example.com/other"
        assert "type" not in found["subscribe"]
        assert "label" not in found

        paused = await stage.http.put(path(cbid) + "/status", json={"status": "Paused"})
        assert paused.status_code == 202, paused.text
        assert paused.json()["status"] == "Paused"
        assert (await stage.http.get(path(cbid))).json()["status"] == "Paused"
        failed = await stage.http.put(path(cbid) + "/status", json={"status": "Failed"})
        assert_error(failed, ErrorCode.INVALID_BODY, "set by keyfob only")
        resumed = await stage.http.put(path(cbid) + "/status", json={"status": "Running"})
        assert resumed.json()["status"] == "Running"

        deleted = await stage.http.delete(path(cbid))
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert_error(await stage.http.get(path(cbid)), ErrorCode.CALLBACK_NOT_FOUND)
        assert_error(await stage.http.delete(path(cbid)), ErrorCode.CALLBACK_NOT_FOUND)


async def test_list_filters_by_type_and_pages(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        remote = (await create(stage, {**BODY, "type": ["Remote"]}))["callbackId"]
        monitor = (await create(stage, {**BODY, "type": ["Monitor"]}))["callbackId"]
        both = (await create(stage, {k: v for k, v in BODY.items() if k != "type"}))["callbackId"]

        async def ids(**params: Any) -> list[str]:
            answer = await stage.http.get(path(), params=params)
            assert answer.status_code == 200, answer.text
            assert_conforms("b2c-api", "UserCallbacks", answer.json())
            return [c["id"] for c in answer.json()["_embedded"]["callbacks"]]

        assert await ids() == [remote, monitor, both]
        assert await ids(types="Remote") == [remote, both]
        assert await ids(types="Monitor") == [monitor, both]
        assert await ids(types=["Monitor", "Remote"]) == [remote, monitor, both]
        bad = await stage.http.get(path(), params={"types": "Alarm"})
        assert_error(bad, ErrorCode.INVALID_QUERY)

        first = (await stage.http.get(path(), params={"pageSize": 2})).json()
        assert first["total"] == 3
        assert first["totalPage"] == 2
        assert first["currentPage"] == 1
        assert first["_links"]["next"]["href"].startswith(f"{BASE}/user/callbacks?")
        nxt = httpx.URL(first["_links"]["next"]["href"])
        second = await stage.http.get(path(), params=dict(nxt.params))
        assert second.status_code == 200, second.text
        assert [c["id"] for c in second.json()["_embedded"]["callbacks"]] == [both]


async def test_refused_bodies_store_nothing(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        before = await stored(db)
        cases: list[tuple[dict[str, Any], ErrorCode, str]] = [
            (
                {"callback": {"websocket": {"target": "ws://169.254.169.254/"}}},
                ErrorCode.INVALID_WEBHOOK_TARGET,
                "callback.websocket.target",
            ),
            (
                {"callback": {"pushnotif": {"devices": ["token"]}}},
                ErrorCode.INVALID_BODY,
                "this server has no push (FCM) configuration",
            ),
            (
                {"callback": {"webhook": {"name": "x", "target": "http://169.254.169.254/"}}},
                ErrorCode.INVALID_WEBHOOK_TARGET,
                "callback.webhook.target",
            ),
            (
                {
                    "callback": {
                        "webhook": {
                            "name": "x",
                            "target": "https://h.example.com/",
                            "attributes": [{"type": "Body", "key": "f", "value": "$fleetID"}],
                        }
                    }
                },
                ErrorCode.UNKNOWN_VARIABLE,
                "$fleetID",
            ),
            ({**BODY, "remoteTypes": ["Horn"]}, ErrorCode.INVALID_BODY, "remoteTypes"),
        ]
        for body, error, words in cases:
            assert_error(await stage.http.post(path(), json=body), error, words)
        assert await stored(db) == before


# -- tenancy --------------------------------------------------------------------------------


async def test_a_callback_is_seen_only_by_its_user_and_client(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await create(stage))["callbackId"]
        _, stranger = await stage.another_user()
        same_user_other_app = await stage.same_user_other_client()
        try:
            for other in (stranger, same_user_other_app):
                assert_error(await other.get(path(cbid)), ErrorCode.CALLBACK_NOT_FOUND)
                assert_error(await other.put(path(cbid), json=BODY), ErrorCode.CALLBACK_NOT_FOUND)
                assert_error(
                    await other.put(path(cbid) + "/status", json={"status": "Paused"}),
                    ErrorCode.CALLBACK_NOT_FOUND,
                )
                assert_error(await other.delete(path(cbid)), ErrorCode.CALLBACK_NOT_FOUND)
                listed = (await other.get(path())).json()
                assert listed["total"] == 0
                assert listed["_embedded"]["callbacks"] == []
        finally:
            await stranger.aclose()
            await same_user_other_app.aclose()
        found = (await stage.http.get(path(cbid))).json()
        assert found["status"] == "Running"
        assert found["subscribe"] == BODY


async def test_fleet_and_user_callbacks_never_meet(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        tenant = stage.tenant
        fleet_callback = await tenant.http.post(
            f"{tenant.fleet}/remote/callbacks",
            json={
                "callback": {"webhook": {"name": "f", "target": "https://f.example.com/"}},
                "remoteTypes": ["Doors"],
            },
        )
        fleet_id = fleet_callback.json()["callbackId"]
        user_id = (await create(stage))["callbackId"]
        assert_error(await stage.http.get(path(fleet_id)), ErrorCode.CALLBACK_NOT_FOUND)
        assert [
            c["id"] for c in (await stage.http.get(path())).json()["_embedded"]["callbacks"]
        ] == [user_id]
        on_fleet_face = await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{user_id}")
        assert on_fleet_face.status_code == 404
        listed = (await tenant.http.get(f"{tenant.fleet}/remote/callbacks")).json()
        assert [c["id"] for c in listed["_embedded"]["callbacks"]] == [fleet_id]


async def test_partner_credentials_open_nothing_on_the_user_face(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await create(stage))["callbackId"]
        partner = stage.tenant.http  # HTTP Basic and the partner's client_id
        realm = {"x-introspect-realm": "clientsB2CPeugeot"}
        for method, url in (
            ("GET", path()),
            ("POST", path()),
            ("GET", path(cbid)),
            ("DELETE", path(cbid)),
            ("GET", f"{V4}/user/vehicles/{stage.vehicle()}/callbacks/{cbid}/remotes"),
            ("POST", f"{V4}/user/vehicles/{stage.vehicle()}/callbacks/{cbid}/remotes"),
        ):
            answer = await partner.request(method, url, headers=realm, json=BODY)
            assert answer.status_code == 401, (method, url, answer.text)
            assert answer.json() == GATEWAY
        assert (await stage.http.get(path(cbid))).status_code == 200
