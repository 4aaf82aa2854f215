"""Who may call what: credentials (401), tenancy isolation, request budgets (§9.1), admin API.

Isolation is checked on every fleet-face endpoint: partner B, fully authenticated, addresses
partner A's fleet, vehicles, callbacks and remotes and must get nothing and change nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from keyfob.vehicles.vins import check_digit
from oracle_schemas import assert_conforms, errors

RATE_HEADERS = (
    "X-RateLimit-Limit-1",
    "X-RateLimit-Remaining-1",
    "X-RateLimit-Limit-2",
    "X-RateLimit-Remaining-2",
)


def check_error(answer: httpx.Response, error: ErrorCode) -> list[str]:
    if answer.status_code != error.status:
        return [f"status {answer.status_code} instead of {error.status}: {answer.text}"]
    data = answer.json()
    problems = errors("b2b-api", "xError", data)
    if data.get("code") != error.code:
        problems.append(f"code {data.get('code')} instead of {error.code}: {data.get('message')}")
    return problems


def endpoints(tenant: Tenant, cbid: str, rid: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every fleet-face operation on ``tenant``'s resources, with a valid body where needed."""
    vid = tenant.vehicles["Electric"].id
    callbacks = f"{tenant.fleet}/remote/callbacks"
    remotes = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
    subscription = {
        "callback": {"webhook": {"target": "https://evil.example.com/x", "name": "x"}},
        "remoteTypes": ["Horn"],
    }
    return [
        ("GET", tenant.fleet, None),
        ("GET", f"{tenant.fleet}/vehicles", None),
        ("GET", f"{tenant.fleet}/vehicles/{vid}", None),
        ("GET", f"/connectedcar/v3/vehicles/{tenant.vehicles['Electric'].vin}", None),
        ("GET", callbacks, None),
        ("POST", callbacks, subscription),
        ("GET", f"{callbacks}/{cbid}", None),
        ("PUT", f"{callbacks}/{cbid}", subscription),
        ("PUT", f"{callbacks}/{cbid}/status", {"status": "Paused"}),
        ("DELETE", f"{callbacks}/{cbid}", None),
        ("GET", remotes, None),
        ("POST", remotes, {"horn": {"state": "Activated"}}),
        ("GET", f"{remotes}/{rid}", None),
    ]


async def posted_remote(tenant: Tenant) -> tuple[str, str]:
    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    answer = await tenant.http.post(
        f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes", json={"wakeUp": {}}
    )
    assert answer.status_code == 202, answer.text
    return cbid, answer.json()["remoteActionId"]


# -- credentials ---------------------------------------------------------------------------


async def test_every_endpoint_needs_credentials(app: FastAPI, tenant: Tenant) -> None:
    cbid, rid = await posted_remote(tenant)
    anonymous = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
    )
    failures = []
    async with anonymous:
        for method, url, data in [
            *endpoints(tenant, cbid, rid),
            ("GET", "/connectedcar/v3/fleets", None),
        ]:
            answer = await anonymous.request(method, url, json=data)
            failures += [
                f"{method} {url}: {p}" for p in check_error(answer, ErrorCode.UNAUTHENTICATED)
            ]
            if answer.headers.get("www-authenticate") != 'Basic realm="keyfob"':
                failures.append(f"{method} {url}: no Basic challenge")
            if any(h in answer.headers for h in RATE_HEADERS):
                failures.append(f"{method} {url}: rate headers before authentication")
        no_client_id = await anonymous.get(tenant.fleet, auth=(tenant.login, tenant.password))
        failures += check_error(no_client_id, ErrorCode.UNAUTHENTICATED)
    assert not failures, "\n".join(failures)
    assert (await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}")).status_code == 200


async def test_wrong_credentials_are_401_and_alike(tenant: Tenant, other_tenant: Tenant) -> None:
    url = tenant.fleet
    cases: dict[str, dict[str, Any]] = {
        "wrong password": {"auth": (tenant.login, "nope-nope-nope")},
        "unknown login": {"auth": ("mallory", tenant.password)},
        "another partner's client_id": {"params": {"client_id": other_tenant.client_id}},
        "empty client_id": {"params": {"client_id": ""}},
    }
    messages = set()
    for name, options in cases.items():
        answer = await tenant.http.get(url, **options)
        expected = (
            ErrorCode.UNAUTHENTICATED if name == "empty client_id" else ErrorCode.BAD_CREDENTIALS
        )
        assert not check_error(answer, expected), (name, answer.text)
        if expected is ErrorCode.BAD_CREDENTIALS:
            messages.add(answer.json()["message"])
    assert len(messages) == 1, "a refusal must not tell which part was wrong"


# -- tenancy -------------------------------------------------------------------------------


async def test_partner_b_gets_nothing_of_partner_a(tenant: Tenant, other_tenant: Tenant) -> None:
    cbid, rid = await posted_remote(tenant)
    before = (await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}")).json()
    failures = []
    for method, url, data in endpoints(tenant, cbid, rid):
        answer = await other_tenant.http.request(method, url, json=data)
        if answer.status_code != 404:
            failures.append(f"{method} {url}: {answer.status_code} {answer.text}")
        elif tenant.vehicles["Electric"].vin not in url and answer.json()["code"] != 40401:
            failures.append(f"{method} {url}: {answer.json()}")

    own_cb = await create_callback(other_tenant)
    own_vid = other_tenant.vehicles["Electric"].id
    mixed = [
        # B's fleet with A's vehicle, B's fleet with A's callback, B's route to A's remote.
        f"{other_tenant.fleet}/vehicles/{tenant.vehicles['Electric'].id}/callbacks/{own_cb}/remotes",
        f"{other_tenant.fleet}/vehicles/{own_vid}/callbacks/{cbid}/remotes",
        f"{other_tenant.fleet}/vehicles/{own_vid}/callbacks/{own_cb}/remotes/{rid}",
        f"{other_tenant.fleet}/remote/callbacks/{cbid}",
    ]
    for url in mixed:
        answer = await other_tenant.http.get(url)
        if answer.status_code != 404:
            failures.append(f"GET {url}: {answer.status_code} {answer.text}")
    assert not failures, "\n".join(failures)

    fleets = (await other_tenant.http.get("/connectedcar/v3/fleets")).json()
    assert [f["id"] for f in fleets["_embedded"]["fleets"]] == [other_tenant.fleet_id]
    theirs = (await other_tenant.http.get(f"{other_tenant.fleet}/remote/callbacks")).json()
    assert [c["id"] for c in theirs["_embedded"]["callbacks"]] == [own_cb]
    after = await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}")
    assert after.json() == before, "B's writes must not have touched A's callback"
    listed = (await tenant.http.get(f"{tenant.fleet}/remote/callbacks")).json()
    assert listed["total"] == 1


# -- request budgets -----------------------------------------------------------------------


@asynccontextmanager
async def app_with(db: Database, clock: FakeClock, **settings: Any) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(db.url, **settings), database=db, clock=clock, announce=lambda _: None
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_rate_headers_on_every_authenticated_answer(tenant: Tenant) -> None:
    answers = [
        await tenant.http.get(tenant.fleet),
        await tenant.http.get("/connectedcar/v3/fleets/nope"),
        await tenant.http.get(f"{tenant.fleet}/remote/callbacks", params={"pageSize": 0}),
        await tenant.http.post(
            f"{tenant.fleet}/remote/callbacks",
            content=b"{",
            headers={"content-type": "application/json"},
        ),
    ]
    assert [a.status_code for a in answers] == [200, 404, 400, 400]
    remaining = []
    for answer in answers:
        assert all(h in answer.headers for h in RATE_HEADERS), answer.headers
        assert answer.headers["X-RateLimit-Limit-1"] == "100000"
        assert answer.headers["X-RateLimit-Limit-2"] == "100"
        remaining.append(int(answer.headers["X-RateLimit-Remaining-1"]))
    assert remaining == sorted(remaining, reverse=True)
    assert len(set(remaining)) == len(remaining), "each answer spends one request"


async def test_burst_budget_gives_429_with_retry_after_then_recovers(
    db: Database, clock: FakeClock
) -> None:
    async with app_with(db, clock, rate_limit={"day": 1000, "burst": 3}) as application:
        carol = await make_tenant(application, db, "carol", clock())
        dave = await make_tenant(application, db, "dave", clock())
        async with carol.http, dave.http:
            spent = [await carol.http.get(carol.fleet) for _ in range(3)]
            assert [a.status_code for a in spent] == [200, 200, 200]
            assert [a.headers["X-RateLimit-Remaining-2"] for a in spent] == ["2", "1", "0"]

            refused = await carol.http.get(carol.fleet)
            assert not check_error(refused, ErrorCode.RATE_LIMITED)
            assert refused.headers["Retry-After"] == "1"
            assert refused.headers["X-RateLimit-Reset"] == "1"
            assert refused.headers["X-RateLimit-Remaining-2"] == "0"
            assert "Retry-After" not in spent[-1].headers

            assert (await dave.http.get(dave.fleet)).status_code == 200, "budgets are per partner"
            clock.advance(1)
            again = await carol.http.get(carol.fleet)
            assert again.status_code == 200
            assert again.headers["X-RateLimit-Remaining-2"] == "2"


async def test_day_budget_gives_429_until_the_window_slides(db: Database, clock: FakeClock) -> None:
    async with app_with(db, clock, rate_limit={"day": 2, "burst": 100}) as application:
        erin = await make_tenant(application, db, "erin", clock())
        async with erin.http:
            assert [(await erin.http.get(erin.fleet)).status_code for _ in range(2)] == [200, 200]
            clock.advance(3600)
            refused = await erin.http.get(erin.fleet)
            assert not check_error(refused, ErrorCode.RATE_LIMITED)
            wait = int(refused.headers["Retry-After"])
            assert 22 * 3600 < wait <= 23 * 3600 + 60
            assert refused.headers["X-RateLimit-Remaining-1"] == "0"
            clock.advance(wait)
            assert (await erin.http.get(erin.fleet)).status_code == 200


# -- admin API -----------------------------------------------------------------------------


def valid_vin(prefix: str) -> str:
    body = (prefix + "0" * 17)[:17]
    return body[:8] + check_digit(body[:8] + "0" + body[9:]) + body[9:]


async def test_admin_api_is_off_without_a_token(app: FastAPI) -> None:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
    )
    async with client:
        answer = await client.post(
            "/admin/partners",
            json={"login": "x", "name": "x"},
            headers={"Authorization": "Bearer anything"},
        )
    assert not check_error(answer, ErrorCode.FORBIDDEN)


async def test_admin_provisions_a_partner_who_can_then_call_the_api(
    db: Database, clock: FakeClock
) -> None:
    async with app_with(db, clock, admin_token="root-token-for-tests") as application:
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="https://keyfob.test",
            headers={"Authorization": "Bearer root-token-for-tests"},
        )
        async with admin:
            await check_admin_flow(admin, application)


async def check_admin_flow(admin: httpx.AsyncClient, application: FastAPI) -> None:
    wrong = await admin.post(
        "/admin/partners",
        json={"login": "x", "name": "x"},
        headers={"Authorization": "Bearer nope"},
    )
    assert not check_error(wrong, ErrorCode.UNAUTHENTICATED)

    created = await admin.post("/admin/partners", json={"login": "fleetco", "name": "Fleet Co"})
    assert created.status_code == 201, created.text
    partner = created.json()
    assert set(partner) == {"id", "login", "clientId", "password"}
    duplicate = await admin.post("/admin/partners", json={"login": "fleetco", "name": "Again"})
    assert not check_error(duplicate, ErrorCode.ALREADY_EXISTS)

    fleet = await admin.post(
        "/admin/partners/fleetco/fleets", json={"name": "Vans", "id": "vans-1"}
    )
    assert fleet.status_code == 201, fleet.text
    assert_conforms("b2b-api", "Fleet", fleet.json())
    vin = valid_vin("VF3ADMXN1")
    vehicle = await admin.post(
        "/admin/fleets/vans-1/vehicles", json={"vin": vin, "motorization": "Thermic"}
    )
    assert vehicle.status_code == 201, vehicle.text
    assert (vehicle.json()["vin"], vehicle.json()["motorization"]) == (vin, "Thermic")

    refusals: list[tuple[str, str, dict[str, Any], ErrorCode]] = [
        ("/admin/partners", "login", {"name": "no login"}, ErrorCode.INVALID_BODY),
        (
            "/admin/partners",
            "password",
            {"login": "p2", "name": "n", "password": "short"},
            ErrorCode.INVALID_BODY,
        ),
        ("/admin/partners/ghost/fleets", "ghost", {"name": "x"}, ErrorCode.NOT_FOUND),
        (
            "/admin/partners/fleetco/fleets",
            "vans-1",
            {"name": "x", "id": "vans-1"},
            ErrorCode.ALREADY_EXISTS,
        ),
        (
            "/admin/fleets/vans-1/vehicles",
            "check digit",
            {
                "vin": vin[:8] + ("1" if vin[8] != "1" else "2") + vin[9:],
                "motorization": "Electric",
            },
            ErrorCode.INVALID_BODY,
        ),
        (
            "/admin/fleets/vans-1/vehicles",
            vin,
            {"vin": vin, "motorization": "Electric"},
            ErrorCode.ALREADY_EXISTS,
        ),
        (
            "/admin/fleets/vans-1/vehicles",
            "motorization",
            {"vin": valid_vin("VF3ADMXN2"), "motorization": "Steam"},
            ErrorCode.INVALID_BODY,
        ),
        (
            "/admin/fleets/nowhere/vehicles",
            "nowhere",
            {"vin": valid_vin("VF3ADMXN3"), "motorization": "Electric"},
            ErrorCode.NOT_FOUND,
        ),
    ]
    failures = []
    for url, word, data, error in refusals:
        answer = await admin.post(url, json=data)
        failures += [f"{url} {data}: {p}" for p in check_error(answer, error)]
        if answer.status_code == error.status and word not in answer.json()["message"]:
            failures.append(f"{url}: message lacks {word!r}: {answer.json()['message']}")
    assert not failures, "\n".join(failures)

    partner_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application),
        base_url="https://keyfob.test",
        auth=("fleetco", partner["password"]),
        params={"client_id": partner["clientId"]},
    )
    async with partner_http:
        fleets = (await partner_http.get("/connectedcar/v3/fleets")).json()
        assert [f["id"] for f in fleets["_embedded"]["fleets"]] == ["vans-1"]
        caps = await partner_http.get(
            f"/connectedcar/v3/vehicles/{vin}", params={"extension": "onboardCapabilities"}
        )
        assert caps.status_code == 200, caps.text
        remote = caps.json()["_embedded"]["extension"]["onboardCapabilities"]["remote"]
        assert remote["preconditioning"]["supported"] is False, "Thermic: no preconditioning"
