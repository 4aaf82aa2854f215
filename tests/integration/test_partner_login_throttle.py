"""The fleet face throttles failed partner logins before paying for the password hash.

Each wrong password costs one scrypt hash. Past ``[rate_limit] login_failures`` failures of a
login, or ``login_failures_per_address`` failures from one client address, within
``login_window_s``, the fleet face answers 429 ``SIGN_IN_THROTTLED`` with ``Retry-After``
without looking at the password. An address that signed in before keeps working while others
fail the account, and the refusal ends with the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from conftest import Tenant, make_settings, make_tenant
from console_support import browser_http, csrf_of
from keyfob.api.app import create_app
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database

PER_LOGIN = 3
PER_ADDRESS = 5
WINDOW_S = 600
ATTACKER = "203.0.113.7"
OFFICE = "192.0.2.10"
ELSEWHERE = "198.51.100.9"
DOORS = {"door": {"state": "Locked"}}


@pytest.fixture
async def app(db: Database, clock: FakeClock) -> AsyncIterator[Any]:
    limits = {
        "login_failures": PER_LOGIN,
        "login_failures_per_address": PER_ADDRESS,
        "login_window_s": WINDOW_S,
    }
    settings = make_settings(db.url, rate_limit=limits)
    application = create_app(settings, database=db, clock=clock, announce=lambda _: None)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def caller(
    app: Any, tenant: Tenant, address: str, *, login: str | None = None, password: str = ""
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``tenant``'s fleet from ``address``, with these credentials."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
        base_url="https://keyfob.test",
        auth=(login or tenant.login, password or tenant.password),
        params={"client_id": tenant.client_id},
    ) as http:
        yield http


async def fleet(http: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    return await http.get(tenant.fleet)


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert set(body) == {"code", "uuid", "message", "timestamp"}, body
    assert body["code"] == ErrorCode.SIGN_IN_THROTTLED.code
    assert 1 <= int(answer.headers["retry-after"]) <= WINDOW_S


async def test_a_login_failing_too_often_is_refused_even_with_the_right_password(
    app: Any, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, db, "alice", clock())
    async with caller(app, tenant, OFFICE, password="typo") as typo:
        typos = [(await fleet(typo, tenant)).status_code for _ in range(PER_LOGIN - 1)]
    async with caller(app, tenant, OFFICE) as owner:
        within_budget = await fleet(owner, tenant)
    app.state.ctx.credentials.clear()  # the verified login's cache entry expired
    async with caller(app, tenant, ATTACKER, password="guess") as attacker:
        last_failure = await fleet(attacker, tenant)
        assert_throttled(await fleet(attacker, tenant))
    assert typos == [401] * (PER_LOGIN - 1)
    assert within_budget.status_code == 200, "the right password within the budget works"
    assert last_failure.status_code == 401
    async with caller(app, tenant, ELSEWHERE) as newcomer:
        # The right password, from an address that never signed in: not even looked at.
        assert_throttled(await fleet(newcomer, tenant))
        vid = tenant.vehicles["Electric"].id
        posted = await newcomer.post(
            f"{tenant.fleet}/vehicles/{vid}/callbacks/any/remotes", json=DOORS
        )
        assert_throttled(posted)  # the lean POST remote route refuses the same way
        clock.advance(WINDOW_S)
        assert (await fleet(newcomer, tenant)).status_code == 200, "the refusal ends"
    await tenant.http.aclose()


async def test_an_address_that_signed_in_keeps_working_while_others_fail_the_login(
    app: Any, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, db, "alice", clock())
    async with caller(app, tenant, OFFICE) as owner:
        assert (await fleet(owner, tenant)).status_code == 200
        async with caller(app, tenant, ATTACKER, password="guess") as attacker:
            for _ in range(PER_LOGIN):
                await fleet(attacker, tenant)
            assert_throttled(await fleet(attacker, tenant))
        app.state.ctx.credentials.clear()  # the verified login's cache entry expired
        assert (await fleet(owner, tenant)).status_code == 200
    app.state.ctx.credentials.clear()
    async with caller(app, tenant, ELSEWHERE) as newcomer:
        assert_throttled(await fleet(newcomer, tenant))
    await tenant.http.aclose()


async def test_one_address_failing_many_logins_is_refused_for_every_login(
    app: Any, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, db, "alice", clock())
    for n in range(PER_ADDRESS):
        async with caller(app, tenant, ATTACKER, login=f"guess-{n}", password="x") as guess:
            assert (await fleet(guess, tenant)).status_code == 401
    async with caller(app, tenant, ATTACKER) as same_address:
        assert_throttled(await fleet(same_address, tenant))
    async with caller(app, tenant, ELSEWHERE) as other_address:
        assert (await fleet(other_address, tenant)).status_code == 200
    await tenant.http.aclose()


async def test_a_burst_of_parallel_guesses_pays_for_no_more_hashes_than_the_limit(
    app: Any, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, db, "alice", clock())

    async def guess(n: int) -> httpx.Response:
        async with caller(app, tenant, ATTACKER, password=f"guess-{n}") as attacker:
            return await fleet(attacker, tenant)

    answers = await asyncio.gather(*(guess(n) for n in range(4 * PER_LOGIN)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * PER_LOGIN + [429] * (3 * PER_LOGIN)
    await tenant.http.aclose()


async def test_a_burst_of_right_logins_after_a_restart_all_get_in(
    app: Any, db: Database, clock: FakeClock
) -> None:
    """A client that sends many requests at once to a restarted serve (no credential cached)
    is not mistaken for a guesser: the same credentials are hashed once, for all of them."""
    tenant = await make_tenant(app, db, "alice", clock())
    app.state.ctx.credentials.clear()  # what a restarted serve remembers
    async with caller(app, tenant, OFFICE) as office:
        answers = await asyncio.gather(*(fleet(office, tenant) for _ in range(4 * PER_LOGIN)))
    assert [answer.status_code for answer in answers] == [200] * (4 * PER_LOGIN)
    await tenant.http.aclose()


async def test_the_console_sign_in_counts_and_refuses_alike(
    app: Any, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, db, "alice", clock())
    async with caller(app, tenant, ATTACKER, password="guess") as attacker:
        for _ in range(PER_LOGIN):
            assert (await fleet(attacker, tenant)).status_code == 401
    async with browser_http(app) as browser:
        page = await browser.get("/console/login")
        form = {"csrf": csrf_of(page), "login": tenant.login, "client_id": tenant.client_id}
        refused = await browser.post("/console/login", data={**form, "password": tenant.password})
        clock.advance(WINDOW_S)
        signed_in = await browser.post("/console/login", data={**form, "password": tenant.password})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= WINDOW_S
    assert "Too many failed sign-ins" in refused.text
    assert signed_in.status_code == 303
    await tenant.http.aclose()
