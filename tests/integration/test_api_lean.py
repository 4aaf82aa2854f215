"""The lean POST remote path answers exactly as the documented FastAPI route does.

``keyfob serve`` hands POST remote to ``api.lean`` (``lean_accept``, on by default); the rest of
the suite therefore tests the lean path. Here every kind of request, good and bad, is sent to an
app with it and to one without it, on the same database and tenant, and the answers must agree:
status, ``xError`` code, media type, the rate, challenge and replay headers, and the body's shape.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.api.lean import LeanRemotePost
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database

HEADERS = (
    "content-type",
    "www-authenticate",
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-limit-1",
    "x-ratelimit-limit-2",
    "idempotent-replayed",
)
ID = re.compile(r"[0-9a-f]{32}")


class Counting:
    """Wraps the lean handler to prove that it, not FastAPI, answered."""

    def __init__(self, inner: LeanRemotePost) -> None:
        self.inner = inner
        self.match = inner.match
        self.calls = 0

    async def __call__(self, *args: Any) -> None:
        self.calls += 1
        await self.inner(*args)


@asynccontextmanager
async def app_pair(db: Database, clock: FakeClock, **settings: Any) -> AsyncIterator[list[Any]]:
    apps = []
    for lean in (True, False):
        application = create_app(
            make_settings(db.url, lean_accept=lean, **settings),
            database=db,
            clock=clock,
            announce=lambda _: None,
        )
        if lean:
            assert application.lean is not None
            application.lean = Counting(application.lean)  # type: ignore[assignment]
        else:
            assert application.lean is None
        apps.append(application)
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
    ):
        yield apps


def client(application: Any, tenant: Tenant) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="https://keyfob.test"
    )


def summary(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    shape = ID.sub("<id>", str(body)) if answer.status_code < 400 else body.get("code")
    message = body.get("message", "") if answer.status_code >= 400 else ""
    return {
        "status": answer.status_code,
        "body": shape,
        "message": ID.sub("<id>", message),
        "headers": {name: answer.headers.get(name) for name in HEADERS},
    }


def requests(tenant: Tenant, cbid: str, paused: str) -> list[tuple[str, dict[str, Any]]]:
    vid = tenant.vehicles["Electric"].id
    thermic = tenant.vehicles["Thermic"].id
    url = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
    auth = (tenant.login, tenant.password)
    good: dict[str, Any] = {"auth": auth, "params": {"client_id": tenant.client_id}}
    horn = {"horn": {"state": "Activated"}}
    return [
        ("accepted", {**good, "url": url, "json": horn}),
        ("no credentials", {"url": url, "json": horn, "params": good["params"]}),
        (
            "not Basic",
            {**good, "url": url, "json": horn, "auth": None, "headers": {"Authorization": "X y"}},
        ),
        (
            "unreadable Basic",
            {
                **good,
                "url": url,
                "json": horn,
                "auth": None,
                "headers": {"Authorization": "Basic !"},
            },
        ),
        ("wrong password", {**good, "url": url, "json": horn, "auth": (tenant.login, "nope")}),
        ("no client_id", {"auth": auth, "url": url, "json": horn}),
        ("NUL in path", {**good, "url": url.replace(vid, vid + "%00"), "json": horn}),
        (
            "NUL in query",
            {**good, "url": url, "json": horn, "params": {**good["params"], "x": "\0"}},
        ),
        ("long key", {**good, "url": url, "json": horn, "headers": {"Idempotency-Key": "k" * 300}}),
        (
            "text body",
            {**good, "url": url, "content": b"horn", "headers": {"Content-Type": "text/plain"}},
        ),
        (
            "malformed",
            {**good, "url": url, "content": b"{", "headers": {"Content-Type": "application/json"}},
        ),
        ("empty", {**good, "url": url, "content": b" "}),
        ("too large", {**good, "url": url, "json": {"horn": {"state": "x" * 300_000}}}),
        ("two actions", {**good, "url": url, "json": {**horn, "lights": {"on": True}}}),
        ("legacy name", {**good, "url": url, "json": {"ligths": {"on": True}}}),
        ("unknown fleet", {**good, "url": url.replace(tenant.fleet_id, "f" * 32), "json": horn}),
        ("unknown vehicle", {**good, "url": url.replace(vid, "e" * 32), "json": horn}),
        ("unknown callback", {**good, "url": url.replace(cbid, "c" * 32), "json": horn}),
        ("malformed callback id", {**good, "url": url.replace(cbid, "x"), "json": horn}),
        ("paused callback", {**good, "url": url.replace(cbid, paused), "json": horn}),
        (
            "vehicle cannot",
            {**good, "url": url.replace(vid, thermic), "json": {"charging": {"immediate": True}}},
        ),
    ]


async def test_lean_and_documented_routes_answer_alike(db: Database, clock: FakeClock) -> None:
    async with app_pair(db, clock) as (lean, documented):
        tenant = await make_tenant(lean, db, "lena", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
            paused = await create_callback(tenant)
            answer = await tenant.http.put(
                f"{tenant.fleet}/remote/callbacks/{paused}/status", json={"status": "Paused"}
            )
            assert answer.status_code == 202, answer.text
        differences = []
        async with client(lean, tenant) as fast, client(documented, tenant) as slow:
            for name, request in requests(tenant, cbid, paused):
                found = [summary(await http.post(**request)) for http in (fast, slow)]
                if found[0] != found[1]:
                    differences.append(f"{name}:\n  lean       {found[0]}\n  documented {found[1]}")
        assert not differences, "\n".join(differences)
        assert lean.lean.calls == len(requests(tenant, cbid, paused))


async def test_idempotent_replays_and_budgets_alike(db: Database, clock: FakeClock) -> None:
    async with app_pair(db, clock, rate_limit={"day": 1000, "burst": 3}) as apps:
        tenant = await make_tenant(apps[0], db, "lena", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
        clock.advance(1)
        vid = tenant.vehicles["Electric"].id
        url = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        seen = []
        for number, application in enumerate(apps):
            key = {"Idempotency-Key": f"order-{number}"}
            async with client(application, tenant) as http:
                post = {"url": url, "auth": (tenant.login, tenant.password)}
                post["params"] = {"client_id": tenant.client_id}
                answers = [
                    await http.post(**post, json={"door": {"state": "Locked"}}, headers=key),
                    await http.post(**post, json={"door": {"state": "Locked"}}, headers=key),
                    await http.post(**post, json={"door": {"state": "Unlocked"}}, headers=key),
                    await http.post(**post, json={"door": {"state": "Locked"}}, headers=key),
                ]
            first, replay = answers[0].json(), answers[1].json()
            assert replay["remoteActionId"] == first["remoteActionId"]
            seen.append([summary(a) for a in answers])
        assert [a["status"] for a in seen[0]] == [202, 202, 422, 429]
        assert seen[0] == seen[1]
