"""Remote actions on the user face (§2.4): POST through a user callback, read them back.

Answers are checked against the b2c schemas. A token without the action's scope is a 403 and
nothing is stored (decision 11); immobilization and stolen are not offered (decision 18); a
vehicle not linked to the caller, or a callback or remote of someone else, is a 404.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from keyfob.auth.scopes import ALL_SCOPES
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.runtime.tables import notifications, remote_events, remotes, user_idempotency_keys
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms, errors
from user_face import BASE, DOORS, user_stage
from user_support import relogin


def assert_error(answer: httpx.Response, error: ErrorCode, *words: str) -> None:
    assert answer.status_code == error.status, answer.text
    data = answer.json()
    assert not errors("b2c-api", "xError", data), data
    assert data["code"] == error.code, data
    for word in words:
        assert word in data["message"], data["message"]


async def counts(db: Database) -> tuple[int, ...]:
    async with db.read() as conn:
        return tuple(
            [
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (remotes, remote_events, notifications, user_idempotency_keys)
            ]
        )


OWN = {
    "attributes": [{"type": "Body", "key": "button", "value": "lock $RemoteLabel"}],
    "callbackAttributes": {"webhook": [{"type": "Header", "key": "X-Trace", "value": "t-1"}]},
}


async def test_post_then_read_the_remote_back(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        vid = stage.vehicle()
        body = {"label": "front door", "door": {"state": "Locked"}, **OWN}
        posted = await stage.http.post(stage.remotes_path(cbid), json=body)
        assert posted.status_code == 202, posted.text
        answer = posted.json()
        assert_conforms("b2c-api", "RemotePostResponse", answer)
        rid = answer["remoteActionId"]
        href = f"{BASE}/user/vehicles/{vid}/callbacks/{cbid}/remotes"
        assert answer == {
            "_links": {
                "callback": {"href": f"{BASE}/user/callbacks/{cbid}"},
                "remote": {"href": f"{href}/{rid}"},
            },
            "remoteActionId": rid,
            "type": "Doors",
        }
        assert posted.headers["x-ratelimit-remaining-2"]

        one = await stage.http.get(f"{stage.remotes_path(cbid)}/{rid}")
        assert one.status_code == 200, one.text
        action = one.json()
        assert_conforms("b2c-api", "RemoteAction", action)
        assert action["_links"] == {
            "self": {"href": f"{href}/{rid}"},
            "callback": {"href": f"{BASE}/user/callbacks/{cbid}"},
        }
        assert action["remote"] == body
        assert action["status"] == "Accepted"
        assert [e["status"] for e in action["events"]] == ["Accepted"]

        listed = await stage.http.get(stage.remotes_path(cbid))
        assert listed.status_code == 200, listed.text
        assert_conforms("b2c-api", "RemoteActions", listed.json())
        assert [r["remoteActionId"] for r in listed.json()["_embedded"]["remoteActions"]] == [rid]


async def test_a_token_without_the_actions_scope_is_403_and_stores_nothing(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        narrow = await relogin(
            stage.ctx, stage.user, scopes=sorted(ALL_SCOPES - {"remote:door:write"})
        )
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stage.app),
            base_url="https://keyfob.test",
            headers=narrow.headers,
            params=narrow.params,
        )
        async with http:
            before = await counts(db)
            refused = await http.post(
                stage.remotes_path(cbid), json=DOORS, headers={"Idempotency-Key": "k-1"}
            )
            assert_error(refused, ErrorCode.MISSING_SCOPE, "remote:door:write", "Doors")
            assert await counts(db) == before
            # The same callback and token may still do what they were granted.
            horn = await http.post(stage.remotes_path(cbid), json={"horn": {"state": "Activated"}})
            assert horn.status_code == 202, horn.text
            # A first answer to a key is never replayed to a token lacking the scope.
            await stage.http.post(
                stage.remotes_path(cbid), json=DOORS, headers={"Idempotency-Key": "k-2"}
            )
            again = await http.post(
                stage.remotes_path(cbid), json=DOORS, headers={"Idempotency-Key": "k-2"}
            )
            assert_error(again, ErrorCode.MISSING_SCOPE)


async def test_fleet_only_actions_and_bad_members_are_400(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        before = await counts(db)
        cases: list[tuple[dict[str, Any], ErrorCode, str]] = [
            ({"immobilization": {"activate": True}}, ErrorCode.INVALID_BODY, "immobilization"),
            ({"stolen": {"stolen": True}}, ErrorCode.INVALID_BODY, "not offered on the user"),
            ({**DOORS, "fleet": "x"}, ErrorCode.INVALID_BODY, "unknown member fleet"),
            ({**DOORS, "attributes": None}, ErrorCode.INVALID_BODY, "attributes: must not be"),
            (
                {**DOORS, "attributes": [{"type": "Query", "key": "q", "value": "1"}]},
                ErrorCode.INVALID_BODY,
                "Header or Body",
            ),
            (
                {**DOORS, "attributes": [{"type": "Body", "key": "q", "value": "$vid"}]},
                ErrorCode.UNKNOWN_VARIABLE,
                "$vid",
            ),
            ({"ligths": {"on": True}}, ErrorCode.LEGACY_FIELD, "lights"),
            ({"door": {"state": "Open"}}, ErrorCode.INVALID_BODY, "door.state"),
        ]
        for body, error, words in cases:
            answer = await stage.http.post(stage.remotes_path(cbid), json=body)
            assert_error(answer, error, words)
        assert await counts(db) == before


async def test_the_callback_must_run_and_carry_remotes(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        paused = (await stage.callback())["callbackId"]
        await stage.set_status(paused, "Paused")
        assert_error(
            await stage.http.post(stage.remotes_path(paused), json=DOORS),
            ErrorCode.CALLBACK_NOT_RUNNING,
        )
        monitors = (await stage.callback(type=["Monitor"]))["callbackId"]
        assert_error(
            await stage.http.post(stage.remotes_path(monitors), json=DOORS),
            ErrorCode.REMOTE_TYPE_NOT_IN_CALLBACK,
            "type includes Remote",
        )
        both = (await stage.callback(type=["Monitor", "Remote"]))["callbackId"]
        assert (await stage.http.post(stage.remotes_path(both), json=DOORS)).status_code == 202
        thermic = stage.vehicle("Thermic")
        warm = {"preconditioning": {"airConditioning": {"immediate": True}}}
        assert_error(
            await stage.http.post(stage.remotes_path(both, thermic), json=warm),
            ErrorCode.NOT_SUPPORTED_BY_VEHICLE,
        )


async def test_idempotency_keys_belong_to_the_user_and_client(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        key = {"Idempotency-Key": "lock-1"}
        first = await stage.http.post(stage.remotes_path(cbid), json=DOORS, headers=key)
        again = await stage.http.post(stage.remotes_path(cbid), json=DOORS, headers=key)
        assert again.status_code == 202, again.text
        assert again.json()["remoteActionId"] == first.json()["remoteActionId"]
        assert again.headers["idempotent-replayed"] == "true"
        other_body = await stage.http.post(
            stage.remotes_path(cbid), json={"door": {"state": "Unlocked"}}, headers=key
        )
        assert_error(other_body, ErrorCode.IDEMPOTENCY_KEY_REUSED)

        _, stranger = await stage.another_user(vehicles=[stage.vehicle()])
        async with stranger:
            theirs = (await stage.callback(http=stranger))["callbackId"]
            own = await stranger.post(stage.remotes_path(theirs), json=DOORS, headers=key)
            assert own.status_code == 202, own.text
            assert own.json()["remoteActionId"] != first.json()["remoteActionId"]
            assert "idempotent-replayed" not in own.headers


async def test_a_user_reaches_only_their_vehicles_callbacks_and_remotes(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        rid = await stage.remote(cbid)
        not_mine = stage.vehicle("Hybrid")  # in the fleet, not linked to the user
        assert_error(
            await stage.http.post(stage.remotes_path(cbid, not_mine), json=DOORS),
            ErrorCode.VEHICLE_NOT_FOUND,
        )
        assert_error(
            await stage.http.get(stage.remotes_path(cbid, not_mine)), ErrorCode.VEHICLE_NOT_FOUND
        )
        # Another user of the same car, with a callback of their own.
        _, stranger = await stage.another_user(vehicles=[stage.vehicle()])
        async with stranger:
            theirs = (await stage.callback(http=stranger))["callbackId"]
            for answer in (
                await stranger.post(stage.remotes_path(cbid), json=DOORS),
                await stranger.get(stage.remotes_path(cbid)),
                await stranger.get(f"{stage.remotes_path(cbid)}/{rid}"),
            ):
                assert_error(answer, ErrorCode.CALLBACK_NOT_FOUND)
            assert_error(
                await stranger.get(f"{stage.remotes_path(theirs)}/{rid}"),
                ErrorCode.REMOTE_NOT_FOUND,
            )
            listed = (await stranger.get(stage.remotes_path(theirs))).json()
            assert listed["_embedded"]["remoteActions"] == []
        # A fleet's callback, through the user face.
        tenant = stage.tenant
        fleet_cb = await tenant.http.post(
            f"{tenant.fleet}/remote/callbacks",
            json={
                "callback": {"webhook": {"name": "f", "target": "https://f.example.com/"}},
                "remoteTypes": ["Doors"],
            },
        )
        assert_error(
            await stage.http.post(stage.remotes_path(fleet_cb.json()["callbackId"]), json=DOORS),
            ErrorCode.CALLBACK_NOT_FOUND,
        )
        # And the user's remote through the fleet face.
        on_fleet = await tenant.http.get(
            f"{tenant.fleet}/vehicles/{stage.vehicle()}/callbacks/{cbid}/remotes/{rid}"
        )
        assert on_fleet.status_code == 404
