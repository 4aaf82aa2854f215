"""``keyfob listen``: what a developer sees, and what the sender gets back."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import KeyfobError
from keyfob.listen.receiver import build_app
from keyfob.notifications.payload import EventRecord, build_remote_events, encode
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.signing import new_secret, sign

RID = "0f9a6c2e5b7d4e1f8a3b2c1d0e9f8a7b"
VIN = "VF3ABCDE0FG123456"

Client = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def doors_event(seq: int, event_type: str, status: str, cause: str | None = None) -> EventRecord:
    return EventRecord(
        event_id=f"{seq:032x}",
        remote_id=RID,
        seq=seq,
        vin=VIN,
        event_date=datetime(2026, 3, 1, 8, 0, seq, tzinfo=UTC),
        remote_type="Doors",
        event_type=event_type,
        status=status,
        failure_cause=cause,
    )


BATCH = encode(
    build_remote_events(
        "cb",
        [],
        [doors_event(1, "Pending", "Accepted"), doors_event(2, "Done", "Failed", "DoorsOpen")],
    )
)


@pytest.fixture
async def client_for() -> AsyncIterator[Client]:
    opened: list[TestClient[web.Request, web.Application]] = []

    async def make(app: web.Application) -> TestClient[web.Request, web.Application]:
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


async def test_a_batch_prints_one_line_per_event(client_for: Client) -> None:
    out = io.StringIO()
    client = await client_for(build_app(None, 0.0, False, out, None))
    response = await client.post("/any/path/at/all", data=BATCH)
    assert response.status == 200
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[1:] == [RID, VIN, "Doors", "Pending/Accepted", "#1"]
    assert lines[1].split()[1:] == [RID, VIN, "Doors", "Done/Failed", "(DoorsOpen)", "#2"]


async def test_b2c_messages_alone_or_in_an_array(client_for: Client) -> None:
    message = {
        "callbackId": "cb",
        "attributes": [],
        "type": "Remote",
        "date": "2026-03-01T08:00:09.000Z",
        "remoteEvent": {
            "remoteActionId": "ra1",
            "remoteType": "WakeUp",
            "eventStatus": {"type": "Done", "status": "Success"},
        },
    }
    out = io.StringIO()
    client = await client_for(build_app(None, 0.0, False, out, None))
    await client.post("/", data=json.dumps(message))
    await client.post("/", data=json.dumps([message, message]))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(line.split()[1:] == ["ra1", "-", "WakeUp", "Done/Success"] for line in lines)


async def test_b2c_sequence_numbers_come_from_the_header(client_for: Client) -> None:
    def message(rid: str) -> dict[str, object]:
        return {
            "callbackId": "cb",
            "attributes": [],
            "type": "Remote",
            "date": "2026-03-01T08:00:09.000Z",
            "remoteEvent": {
                "remoteActionId": rid,
                "remoteType": "Horn",
                "eventStatus": {"type": "Pending", "status": "Accepted"},
            },
        }

    out = io.StringIO()
    client = await client_for(build_app(None, 0.0, False, out, None))
    await client.post("/", data=json.dumps(message("a")), headers={"keyfob-sequence": "3"})
    body = json.dumps([message("b"), message("c")])
    await client.post("/", data=body, headers={"keyfob-sequence": "1,7"})
    lines = [line.split()[1:] for line in out.getvalue().splitlines()]
    assert lines == [
        ["a", "-", "Horn", "Pending/Accepted", "#3"],
        ["b", "-", "Horn", "Pending/Accepted", "#1"],
        ["c", "-", "Horn", "Pending/Accepted", "#7"],
    ]


async def test_an_oauth_redirect_shows_and_prints_the_code(client_for: Client) -> None:
    out = io.StringIO()
    client = await client_for(build_app(None, 0.0, False, out, None))
    code = "0b6f7a52-8d0c-4f59-9d53-2f1f4b1c9e11"
    page = await client.get("/oauth/callback", params={"code": code, "state": "s1"})
    assert page.status == 200
    assert code in await page.text()
    refused = await client.get("/oauth/callback", params={"error": "access_denied"})
    assert refused.status == 200
    assert "access_denied" in await refused.text()
    assert (await client.get("/elsewhere")).status == 404
    lines = out.getvalue().splitlines()
    assert lines[0].split()[1:] == ["authorization", "code", code, "(state", "s1)"]
    assert "authorization refused: access_denied" in lines[1]


async def test_raw_prints_the_body_as_received(client_for: Client) -> None:
    out = io.StringIO()
    client = await client_for(build_app(None, 0.0, True, out, None))
    await client.post("/", data=BATCH)
    assert out.getvalue() == BATCH.decode() + "\n"


async def test_a_body_that_is_not_json_is_reported_and_acknowledged(client_for: Client) -> None:
    out = io.StringIO()
    client = await client_for(build_app(None, 0.0, False, out, None))
    response = await client.post("/", data=b"<xml/>")
    assert response.status == 200
    assert "not JSON" in out.getvalue()


async def test_signatures_are_checked_when_a_secret_is_given(client_for: Client) -> None:
    secret = new_secret()
    out = io.StringIO()
    client = await client_for(build_app(secret, 0.0, False, out, None))
    good = sign([secret], "msg1", int(time.time()), BATCH)
    forged = sign([new_secret()], "msg2", int(time.time()), BATCH)
    assert (await client.post("/", data=BATCH, headers=good)).status == 200
    assert (await client.post("/", data=BATCH, headers=forged)).status == 401
    assert (await client.post("/", data=BATCH)).status == 401
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert "signature rejected" in lines[2]
    assert "webhook-id is missing" in lines[3]


async def test_end_to_end_a_signed_delivery_is_accepted(client_for: Client) -> None:
    old, new = new_secret(), new_secret()
    out = io.StringIO()
    client = await client_for(build_app(old, 0.0, False, out, None))
    sender = WebhookSender(TargetPolicy(allow_private=True))
    try:
        outcome = await sender.post(
            str(client.make_url("/hook")),
            query=[],
            headers=sign([new, old], "msg1", int(time.time()), BATCH),
            body=BATCH,
        )
    finally:
        await sender.close()
    assert outcome.delivered
    assert "Done/Failed (DoorsOpen)" in out.getvalue()


async def answers(client: TestClient[web.Request, web.Application], count: int) -> list[int]:
    return [(await client.post("/", data=BATCH)).status for _ in range(count)]


async def test_the_fail_rate_answers_500_to_that_share_repeatably(client_for: Client) -> None:
    out = io.StringIO()
    first = await answers(await client_for(build_app(None, 0.3, False, out, 7)), 100)
    again = await answers(await client_for(build_app(None, 0.3, False, io.StringIO(), 7)), 100)
    assert first == again
    assert set(first) == {200, 500}
    assert 15 <= first.count(500) <= 45
    assert out.getvalue().count("answered 500") == first.count(500)


@pytest.mark.parametrize(("rate", "status"), [(0.0, 200), (1.0, 500)])
async def test_the_fail_rate_bounds(client_for: Client, rate: float, status: int) -> None:
    client = await client_for(build_app(None, rate, False, io.StringIO(), None))
    assert set(await answers(client, 5)) == {status}


def test_bad_options_are_refused_with_their_name() -> None:
    with pytest.raises(KeyfobError, match="--fail-rate"):
        build_app(None, 1.5, False, io.StringIO(), None)
    with pytest.raises(KeyfobError, match="secret"):
        build_app("hunter2", 0.0, False, io.StringIO(), None)
