"""The event streams a consumer dials itself (an extension): SSE and the poll cursor, fleet face.

Everything goes through a real server on a loopback port: remotes are posted over HTTP, each
one's accepted event becomes a notification in the outbox, and the stream carries it as the
webhook would (``RemoteEvents``). Both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import make_tenant
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from stream_support import Partner, make_app, partner_over, serving, sse


@dataclass
class Served:
    url: str
    alice: Partner
    bob: Partner


@pytest.fixture
async def served(db: Database, clock: FakeClock) -> AsyncIterator[Served]:
    app = make_app(db, clock)
    async with serving(app) as url:
        alice = await make_tenant(app, db, "alice", clock())
        bob = await make_tenant(app, db, "bob", clock())
        async with partner_over(url, alice) as a_http, partner_over(url, bob) as b_http:
            yield Served(url, Partner(alice, a_http), Partner(bob, b_http))
        await alice.http.aclose()
        await bob.http.aclose()


def remote_ids(events: list[Any]) -> list[str]:
    return [e.json()["events"][0]["remoteActionId"] for e in events]


async def test_each_notification_arrives_as_its_webhook_body(served: Served) -> None:
    alice = served.alice
    attributes = [{"type": "Body", "key": "car", "value": "$vin"}]
    callback_id = await alice.callback(attributes)
    async with sse(alice.http, alice.events(callback_id, "/stream")) as stream:
        posted = [await alice.remote(callback_id), await alice.remote(callback_id, "Hybrid")]
        got = await stream.take(2)
    assert remote_ids(got) == posted
    first = got[0].json()
    assert_conforms("b2b-webhook", "RemoteEvents", first)
    assert first["callbackId"] == callback_id
    assert first["attributes"] == [{"key": "car", "value": alice.tenant.vehicles["Electric"].vin}]
    assert first["events"][0]["eventStatus"] == {"type": "Pending", "status": "Accepted"}
    assert all(e.event == "notification" for e in got)
    assert got[0].id is not None
    assert got[1].id is not None
    assert got[0].id < got[1].id


async def test_resuming_with_last_event_id_loses_nothing(served: Served) -> None:
    alice = served.alice
    callback_id = await alice.callback()
    url = alice.events(callback_id, "/stream")
    async with sse(alice.http, url) as stream:
        before = [await alice.remote(callback_id) for _ in range(2)]
        seen = await stream.take(2)
    meanwhile = [await alice.remote(callback_id) for _ in range(3)]
    async with sse(alice.http, url, last_event_id=seen[-1].id) as stream:
        missed = await stream.take(3)
        live = await alice.remote(callback_id)
        [after] = await stream.take(1)
    assert remote_ids(seen) == before
    assert remote_ids(missed) == meanwhile
    assert remote_ids([after]) == [live]


async def test_the_poll_cursor_pages_through_everything_once(served: Served) -> None:
    alice = served.alice
    callback_id = await alice.callback()
    posted = [await alice.remote(callback_id) for _ in range(5)]
    seen: list[str] = []
    after: str | None = None
    for expected in (2, 2, 1, 0):
        params = {"limit": "2", **({"after": after} if after else {})}
        answer = await alice.http.get(alice.events(callback_id), params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) == expected
        seen += [item["data"]["events"][0]["remoteActionId"] for item in page["items"]]
        if expected:
            assert page["next"] == page["items"][-1]["id"]
        else:
            assert page["next"] == after  # nothing new: the same cursor again
        after = page["next"]
    assert seen == posted


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"after": "not-an-id"}, {}),
        ({"limit": "0"}, {}),
        ({"limit": "501"}, {}),
        ({}, {"Last-Event-ID": "0123"}),
    ],
)
async def test_a_bad_cursor_or_limit_is_a_400(
    served: Served, params: dict[str, str], headers: dict[str, str]
) -> None:
    alice = served.alice
    callback_id = await alice.callback()
    tail = "/stream" if headers else ""
    answer = await alice.http.get(alice.events(callback_id, tail), params=params, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 40006


async def test_another_partners_callback_is_not_found(served: Served) -> None:
    callback_id = await served.alice.callback()
    bob = served.bob
    theirs = f"{served.alice.tenant.fleet}/remote/callbacks/{callback_id}/events"
    mine = bob.events(callback_id)  # bob's fleet, alice's callback
    for path in (theirs, f"{theirs}/stream", mine, f"{mine}/stream"):
        answer = await bob.http.get(path)
        assert answer.status_code == 404, path
    async with httpx.AsyncClient(base_url=served.url) as nobody:
        anonymous = await nobody.get(served.alice.events(callback_id))
    assert anonymous.status_code == 401


async def test_the_streams_are_in_the_openapi_document(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    fleet = "/connectedcar/v3/fleets/{fid}/remote/callbacks/{cbid}/events"
    user = "/connectedcar/v4/user/callbacks/{cbid}/events"
    expected = {"": {"after", "limit"}, "/stream": {"after", "Last-Event-ID"}, "/ws": {"after"}}
    for base in (fleet, user):
        for tail, names in expected.items():
            operation = paths[base + tail]["get"]
            assert names <= {p["name"] for p in operation["parameters"]}, base + tail
    assert "text/event-stream" in paths[fleet + "/stream"]["get"]["responses"]["200"]["content"]


async def test_notifications_older_than_the_72_h_horizon_are_not_carried(
    served: Served, clock: FakeClock
) -> None:
    alice = served.alice
    callback_id = await alice.callback()
    await alice.remote(callback_id)
    first = (await alice.http.get(alice.events(callback_id))).json()
    clock.advance(72 * 3600 + 1)
    recent = await alice.remote(callback_id)
    later = (await alice.http.get(alice.events(callback_id))).json()
    assert len(first["items"]) == 1
    assert [i["data"]["events"][0]["remoteActionId"] for i in later["items"]] == [recent]
