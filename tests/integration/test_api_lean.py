"""The lean POST remote route answers exactly as the documented FastAPI route does, inside
every middleware.

``keyfob serve`` serves POST remote with ``api.lean`` (``lean_accept``, on by default); the rest
of the suite therefore tests the lean path. Here every kind of request, good and bad, is sent to
an app with it and to one without it, on the same database and tenant, and the answers must
agree: status, body (but for ids, ``uuid`` and ``timestamp``), and every header, in order, but
``date`` and ``content-length``. Both apps carry a middleware added the way an operator would
add one (``app.add_middleware``), which records the route that served each request, so the
tests also prove which side answered and that the lean route runs inside the middleware.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.api.lean import LeanRemotePost
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database

IGNORED = {"date", "content-length"}
ID = re.compile(r"[0-9a-f]{32}")


class Stamp:
    """A test middleware: stamps every answer, records the route that served each request and
    the headers it saw leave, and answers 503 itself to ``X-Maintenance`` (as a gateway would)."""

    def __init__(self, app: ASGIApp, seen: list[tuple[Any, list[tuple[bytes, bytes]]]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(name == b"x-maintenance" for name, _ in scope["headers"]):
            start = {"type": "http.response.start", "status": 503, "headers": []}
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        headers: list[tuple[bytes, bytes]] = []

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers.extend(message["headers"])
                message["headers"] = [*message["headers"], (b"x-stamped", b"yes")]
            await send(message)

        await self.app(scope, receive, stamped)
        self.seen.append((scope.get("route"), headers))


@asynccontextmanager
async def app_pair(
    db: Database, clock: FakeClock, seen: list[list[Any]], **settings: Any
) -> AsyncIterator[list[Any]]:
    """An app with the lean route, one without (``seen[i]`` records what app ``i`` served),
    and a third to set tenants up through, so that the first two count the same requests
    against the partner's budget."""
    apps = []
    for lean in (True, False, True):
        application = create_app(
            make_settings(db.url, lean_accept=lean, **settings),
            database=db,
            clock=clock,
            announce=lambda _: None,
        )
        seen.append([])
        application.add_middleware(Stamp, seen=seen[-1])
        apps.append(application)
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
        apps[2].router.lifespan_context(apps[2]),
    ):
        yield apps


def client(application: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="https://keyfob.test")


REFUSING = {
    "sqlite": [
        "CREATE TRIGGER refuse_remotes BEFORE INSERT ON remotes "
        "BEGIN SELECT RAISE(ABORT, 'storage is failing'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_remotes() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'storage is failing'; END $$",
        "CREATE TRIGGER refuse_remotes BEFORE INSERT ON remotes "
        "FOR EACH ROW EXECUTE FUNCTION refuse_remotes()",
    ],
}
RESTORING = {
    "sqlite": ["DROP TRIGGER refuse_remotes"],
    "postgresql": ["DROP TRIGGER refuse_remotes ON remotes", "DROP FUNCTION refuse_remotes()"],
}


@asynccontextmanager
async def storage_failing(db: Database) -> AsyncIterator[None]:
    """Every insert into ``remotes`` fails, as a database in trouble would."""
    dialect = "sqlite" if db.sqlite else "postgresql"
    async with db.transaction() as conn:
        for statement in REFUSING[dialect]:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with db.transaction() as conn:
            for statement in RESTORING[dialect]:
                await conn.execute(text(statement))


def summary(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    if answer.status_code >= 400:
        assert set(body) == {"code", "uuid", "message", "timestamp"}, body
        body = {**body, "uuid": "<uuid>", "timestamp": "<timestamp>"}
    return {
        "status": answer.status_code,
        "body": ID.sub("<id>", json.dumps(body)),
        "headers": [(k, v) for k, v in answer.headers.multi_items() if k not in IGNORED],
    }


def served_by(seen: list[tuple[Any, Any]]) -> set[type]:
    return {type(route) for route, _ in seen}


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
    seen: list[list[Any]] = []
    async with app_pair(db, clock, seen) as (lean, documented, setup):
        tenant = await make_tenant(setup, db, "lena", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
            paused = await create_callback(tenant)
            answer = await tenant.http.put(
                f"{tenant.fleet}/remote/callbacks/{paused}/status", json={"status": "Paused"}
            )
            assert answer.status_code == 202, answer.text
        differences = []
        statuses = set()
        async with client(lean) as fast, client(documented) as slow:
            for name, request in requests(tenant, cbid, paused):
                found = [summary(await http.post(**request)) for http in (fast, slow)]
                statuses.add(found[0]["status"])
                if found[0] != found[1]:
                    differences.append(f"{name}:\n  lean       {found[0]}\n  documented {found[1]}")
        assert not differences, "\n".join(differences)
        assert statuses == {202, 400, 401, 404, 409, 413, 415}
        # The body above 256 KiB is refused before routing (api.limits): no route saw it.
        assert served_by(seen[0]) == {LeanRemotePost, type(None)}
        assert served_by(seen[1]) == {APIRoute, type(None)}
        assert len(seen[0]) == len(requests(tenant, cbid, paused))


async def test_idempotent_replays_and_budgets_alike(db: Database, clock: FakeClock) -> None:
    seen: list[list[Any]] = []
    limits = {"day": 1000, "burst": 3}
    async with app_pair(db, clock, seen, rate_limit=limits) as (lean, documented, setup):
        tenant = await make_tenant(setup, db, "lena", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
        vid = tenant.vehicles["Electric"].id
        url = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        found = []
        for number, application in enumerate((lean, documented)):
            key = {"Idempotency-Key": f"order-{number}"}
            async with client(application) as http:
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
            found.append([summary(a) for a in answers])
        assert [a["status"] for a in found[0]] == [202, 202, 422, 429]
        assert ("idempotent-replayed", "true") in found[0][1]["headers"]
        assert "retry-after" in dict(found[0][3]["headers"])
        assert found[0] == found[1]
        assert served_by(seen[0]) == {LeanRemotePost}
        assert served_by(seen[1]) == {APIRoute}


async def test_a_failure_to_store_is_the_same_500(db: Database, clock: FakeClock) -> None:
    """The app's last-resort handler answers it, outside every middleware, on both sides."""
    seen: list[list[Any]] = []
    async with app_pair(db, clock, seen) as (lean, documented, setup):
        tenant = await make_tenant(setup, db, "lena", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
        vid = tenant.vehicles["Electric"].id
        post = {
            "url": f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes",
            "auth": (tenant.login, tenant.password),
            "params": {"client_id": tenant.client_id},
            "json": {"horn": {"state": "Activated"}},
        }
        async with (
            storage_failing(db),
            client(lean, raise_app_exceptions=False) as fast,
            client(documented, raise_app_exceptions=False) as slow,
        ):
            found = [summary(await http.post(**post)) for http in (fast, slow)]
    assert found[0]["status"] == 500
    assert '"code": 50000' in found[0]["body"]
    assert "storage" not in found[0]["body"]
    assert found[0] == found[1]
    assert found[0]["headers"] == [("content-type", "application/json")]


async def test_a_middleware_added_to_the_app_wraps_the_lean_route(
    db: Database, clock: FakeClock
) -> None:
    seen: list[list[Any]] = []
    async with app_pair(db, clock, seen) as (lean, _, _):
        tenant = await make_tenant(lean, db, "lena", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
            vid = tenant.vehicles["Electric"].id
            url = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
            del seen[0][:]
            horn = {"horn": {"state": "Activated"}}
            accepted = await tenant.http.post(url, json=horn)
            refused = await tenant.http.post(url, content=b"{", headers={"Content-Type": "x/y"})
            anonymous = await tenant.http.post(url, json=horn, auth=("lena", "wrong"))
            closed = await tenant.http.post(url, json=horn, headers={"X-Maintenance": "1"})
            listed = await tenant.http.get(url)
    assert [accepted.status_code, refused.status_code, anonymous.status_code] == [202, 415, 401]
    for answer in (accepted, refused, anonymous):
        assert answer.headers["x-stamped"] == "yes", answer.headers
    # The middleware answered alone: the lean route never saw the request, nothing was stored.
    assert closed.status_code == 503
    assert listed.status_code == 200
    assert [item["remoteActionId"] for item in listed.json()["_embedded"]["remoteActions"]] == [
        accepted.json()["remoteActionId"]
    ]
    routes = [type(route) for route, _ in seen[0]]
    assert routes == [LeanRemotePost, LeanRemotePost, LeanRemotePost, APIRoute]
    # Inside it, RateLimitHeaders had already added the partner's budget to the lean answers.
    for _, headers in seen[0][:2]:
        assert (b"x-ratelimit-limit-1", str(lean.state.ctx.settings.rate_limit.day).encode()) in (
            headers
        )


async def test_the_lean_route_is_not_in_the_document(db: Database, clock: FakeClock) -> None:
    seen: list[list[Any]] = []
    async with app_pair(db, clock, seen) as (lean, documented, _):
        async with client(lean) as fast, client(documented) as slow:
            found = [(await http.get("/openapi.json")).json() for http in (fast, slow)]
        assert found[0] == found[1]
        remotes = "/connectedcar/v3/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes"
        assert found[0]["paths"][remotes]["post"]["operationId"] == "sendRemoteToVhl"
        ids = {"fid": "f", "vid": "v", "cbid": "c"}
        assert lean.url_path_for("post_remote", **ids) == remotes.format(**ids)
