"""Decision 33 on every route that takes a JSON body, on both faces and the admin API.

A body is UTF-8 JSON naming each key once: a repeated key would otherwise be settled silently
(the last value wins), and a UTF-16 body guessed right. A body above 256 KiB is a 413, refused
while it arrives: a declared Content-Length before authentication, a chunked body as soon as
it passes the limit, so the rest of a 20 MB upload is never read. Each refusal stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from test_api_errors import check_error, stored

from conftest import CALLBACK, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from user_support import make_user, user_http

ADMIN_TOKEN = "body-rules-admin-token"
V4 = "/connectedcar/v4"
TARGET = "https://hooks.example.com/keyfob"
USER_CALLBACK = {
    "label": "app",
    "type": ["Remote"],
    "callback": {"webhook": {"name": "app", "target": TARGET}},
}


@dataclass
class Route:
    """A route, the client allowed to call it, and a body it accepts written with a key twice."""

    name: str
    method: str
    path: str
    http: httpx.AsyncClient
    good: dict[str, Any]
    twice: bytes
    """``good`` with one key repeated: the first value is the one a careful reader expects."""


def dump(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


@asynccontextmanager
async def routes(db: Database, clock: FakeClock) -> AsyncIterator[tuple[FastAPI, list[Route]]]:
    settings = make_settings(
        db.url, admin_token=ADMIN_TOKEN, delivery={"allow_private_webhooks": False}
    )
    app = create_app(settings, database=db, clock=clock, announce=lambda _: None)
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, "alice", clock())
        cbid = await create_callback(tenant)
        vid = tenant.vehicles["Electric"].id
        user = await make_user(app.state.ctx, vehicle_ids=[vid])
        user_client = user_http(app, user)
        answer = await user_client.post(f"{V4}/user/callbacks", json=USER_CALLBACK)
        assert answer.status_code == 202, answer.text
        user_cbid = answer.json()["callbackId"]
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://keyfob.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        door = {"door": {"state": "Locked"}}
        door_twice = b'{"door":{"state":"Locked","state":"Unlocked"}}'
        callback_twice = dump(CALLBACK).replace(
            f'"target":"{TARGET}"', f'"target":"{TARGET}","target":"https://elsewhere.example"'
        )
        user_callback_twice = dump(USER_CALLBACK).replace(
            '"label":"app"', '"label":"app","label":"x"'
        )
        since = {"since": "2026-01-01T00:00:00Z"}
        fleet = tenant.fleet
        found = [
            Route("fleet callback", "POST", f"{fleet}/remote/callbacks", tenant.http, CALLBACK,
                  callback_twice.encode()),
            Route("fleet callback update", "PUT", f"{fleet}/remote/callbacks/{cbid}", tenant.http,
                  CALLBACK, callback_twice.encode()),
            Route("fleet callback status", "PUT", f"{fleet}/remote/callbacks/{cbid}/status",
                  tenant.http, {"status": "Running"}, b'{"status":"Running","status":"Paused"}'),
            Route("fleet remote", "POST", f"{fleet}/vehicles/{vid}/callbacks/{cbid}/remotes",
                  tenant.http, door, door_twice),
            Route("replay", "POST", f"{fleet}/remote/callbacks/{cbid}/deliveries/replay",
                  tenant.http, since,
                  b'{"since":"2026-01-01T00:00:00Z","since":"2026-02-01T00:00:00Z"}'),
            Route("user callback", "POST", f"{V4}/user/callbacks", user_client, USER_CALLBACK,
                  user_callback_twice.encode()),
            Route("user callback status", "PUT", f"{V4}/user/callbacks/{user_cbid}/status",
                  user_client, {"status": "Running"}, b'{"status":"Running","status":"Paused"}'),
            Route("user remote", "POST",
                  f"{V4}/user/vehicles/{vid}/callbacks/{user_cbid}/remotes", user_client, door,
                  door_twice),
            Route("admin partner", "POST", "/admin/partners", admin,
                  {"login": "carol", "name": "Carol"},
                  b'{"login":"carol","name":"Carol","login":"dave"}'),
        ]  # fmt: skip
        try:
            yield app, found
        finally:
            await admin.aclose()
            await user_client.aclose()
            await tenant.http.aclose()


async def snapshot(db: Database, tenant_http: httpx.AsyncClient, path: str) -> Any:
    return await stored(db), (await tenant_http.get(path)).json()


async def test_a_key_given_twice_is_refused_where_the_body_is_otherwise_accepted(
    db: Database, clock: FakeClock
) -> None:
    async with routes(db, clock) as (_, found):
        fleet_http = found[0].http
        callbacks = found[0].path
        before = await snapshot(db, fleet_http, callbacks)
        failures: list[str] = []
        for route in found:
            answer = await route.http.request(
                route.method,
                route.path,
                content=route.twice,
                headers={"content-type": "application/json"},
            )
            problems = check_error(answer, ErrorCode.MALFORMED_JSON, "appears twice")
            failures += [f"{route.name}: {p}" for p in problems]
        assert not failures, "\n".join(failures)
        assert await snapshot(db, fleet_http, callbacks) == before
        # The same bodies without the repeat are accepted (the refusal was the repeat).
        for route in found:
            answer = await route.http.request(route.method, route.path, json=route.good)
            assert answer.status_code < 300, f"{route.name}: {answer.text}"


async def test_a_key_repeated_through_an_escape_or_deep_inside_is_refused(
    db: Database, clock: FakeClock
) -> None:
    async with routes(db, clock) as (_, found):
        remote = next(r for r in found if r.name == "fleet remote")
        bodies = [
            b'{"door":{"state":"Locked","\\u0073tate":"Unlocked"}}',
            b'{"navigation":{"positions":[{"type":"Point","coordinates":[2.35,48.85],'
            b'"type":"Point"}]}}',
            b'{"door":{"state":"Locked"},"door":{"state":"Unlocked"}}',
        ]
        for raw in bodies:
            answer = await remote.http.post(
                remote.path, content=raw, headers={"content-type": "application/json"}
            )
            assert not check_error(answer, ErrorCode.MALFORMED_JSON, "appears twice"), raw
        assert (await stored(db))["remotes"] == 0


async def test_a_body_in_utf16_or_with_a_bom_is_refused(db: Database, clock: FakeClock) -> None:
    async with routes(db, clock) as (_, found):
        before = await stored(db)
        failures: list[str] = []
        for route in found:
            text = json.dumps(route.good)
            for encoding in ("utf-16", "utf-16-le", "utf-32", "utf-8-sig"):
                answer = await route.http.request(
                    route.method,
                    route.path,
                    content=text.encode(encoding),
                    headers={"content-type": "application/json"},
                )
                problems = check_error(answer, ErrorCode.MALFORMED_JSON)
                failures += [f"{route.name} {encoding}: {p}" for p in problems]
        assert not failures, "\n".join(failures)
        assert await stored(db) == before


async def test_a_declared_body_above_the_limit_is_refused_before_anything_else(
    db: Database, clock: FakeClock
) -> None:
    async with routes(db, clock) as (app, found):
        before = await stored(db)
        big = b'{"label": "' + b"x" * (256 * 1024) + b'"}'
        stranger = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
        )
        failures: list[str] = []
        async with stranger:
            for route in found:
                for who, http in (("caller", route.http), ("no credentials", stranger)):
                    answer = await http.request(
                        route.method,
                        route.path,
                        content=big,
                        headers={"content-type": "application/json"},
                    )
                    problems = check_error(answer, ErrorCode.BODY_TOO_LARGE, "262144")
                    if answer.headers.get("connection") != "close":
                        problems.append("the connection is kept open")
                    failures += [f"{route.name}, {who}: {p}" for p in problems]
        assert not failures, "\n".join(failures)
        assert await stored(db) == before


class Upload:
    """A chunked body of ``total`` bytes in 64 KiB chunks; counts the chunks that were read."""

    CHUNK = 64 * 1024

    def __init__(self, total: int) -> None:
        self.total = total
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"label": "'
        sent = 0
        while sent < self.total:
            self.read += 1
            sent += self.CHUNK
            yield b"x" * self.CHUNK
        yield b'"}'


async def test_a_chunked_body_is_refused_once_it_passes_the_limit_not_after(
    db: Database, clock: FakeClock
) -> None:
    async with routes(db, clock) as (_, found):
        before = await stored(db)
        failures: list[str] = []
        for route in found:
            upload = Upload(20 * 1024 * 1024)
            answer = await route.http.request(
                route.method,
                route.path,
                content=upload,
                headers={"content-type": "application/json"},
            )
            assert "content-length" not in answer.request.headers
            problems = check_error(answer, ErrorCode.BODY_TOO_LARGE)
            if upload.read > 256 * 1024 // Upload.CHUNK + 1:
                problems.append(f"{upload.read} chunks of 64 KiB were read")
            failures += [f"{route.name}: {p}" for p in problems]
        assert not failures, "\n".join(failures)
        assert await stored(db) == before

        async def small() -> AsyncIterator[bytes]:
            yield b'{"door": '
            yield b'{"state": "Locked"}}'

        remote = next(r for r in found if r.name == "fleet remote")
        answer = await remote.http.post(
            remote.path, content=small(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 202, answer.text
