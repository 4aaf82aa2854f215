"""The v4 gate (``CurrentUser``) on both engines, through a minimal app that uses it.

Tokens are real: minted by the authorization server's services (``tests/user_support.py``).
Every refused token gets exactly the gateway's 401 body (decision 28).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from conftest import make_settings
from keyfob.auth.oauth import revoke
from keyfob.auth.tokens import peek
from keyfob.kit.clock import FakeClock
from keyfob.runtime.context import AppContext, build_context
from keyfob.store.engine import Database
from user_support import UserLogin, make_user, probe_app, relogin

GATEWAY = {"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "Token is invalid"}


def context(db: Database, clock: FakeClock, **overrides: Any) -> AppContext:
    return build_context(make_settings(db.url, **overrides), database=db, clock=clock)


@pytest.fixture
def ctx(db: Database, clock: FakeClock) -> AppContext:
    return context(db, clock)


@pytest.fixture
async def http(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="https://keyfob.test") as client:
        yield client


@pytest.fixture
async def user(ctx: AppContext) -> UserLogin:
    return await make_user(ctx)


async def probe(
    http: httpx.AsyncClient,
    user: UserLogin,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return await http.get(
        "/connectedcar/v4/probe",
        headers=user.headers if headers is None else headers,
        params=user.params if params is None else params,
    )


def assert_gateway_401(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json() == GATEWAY
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "x-ratelimit-limit-1" not in answer.headers


async def test_a_valid_token_names_its_user_client_realm_and_scopes(
    http: httpx.AsyncClient, user: UserLogin
) -> None:
    answer = await probe(http, user)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"] == user.user_id
    assert answer.json()["client"] == user.client_id
    assert answer.json()["realm"] == "clientsB2CPeugot/OTPPeugeot"
    assert "remote:door:write" in answer.json()["scopes"]
    assert answer.headers["x-ratelimit-limit-1"] == "100000"
    assert answer.headers["x-ratelimit-remaining-2"] == "99"


@pytest.mark.parametrize("spelling", ["clientsB2CPeugeot", "clientsB2CPeugot/OTPPeugeot"])
async def test_both_realm_spellings_are_accepted(
    http: httpx.AsyncClient, user: UserLogin, spelling: str
) -> None:
    headers = {**user.headers, "x-introspect-realm": spelling}
    assert (await probe(http, user, headers=headers)).status_code == 200


async def test_a_token_for_another_realm_is_the_gateway_401(
    http: httpx.AsyncClient, user: UserLogin
) -> None:
    headers = {**user.headers, "x-introspect-realm": "clientsB2CCitroen"}
    assert_gateway_401(await probe(http, user, headers=headers))


async def test_a_token_of_another_client_is_the_gateway_401(
    http: httpx.AsyncClient, ctx: AppContext, user: UserLogin
) -> None:
    other = await make_user(ctx)
    assert_gateway_401(await probe(http, user, params=other.params))
    mixed = {**user.headers, "Authorization": other.headers["Authorization"]}
    assert_gateway_401(await probe(http, user, headers=mixed))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer abc",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "Basic YWxpY2U6YWxpY2Utc2VjcmV0LXBhc3N3b3Jk",
        "Token abc",
    ],
)
async def test_missing_or_malformed_tokens_are_the_gateway_401(
    http: httpx.AsyncClient, user: UserLogin, authorization: str | None
) -> None:
    headers = {"x-introspect-realm": "clientsB2CPeugeot"}
    if authorization is not None:
        headers["Authorization"] = authorization
    assert_gateway_401(await probe(http, user, headers=headers))


async def test_a_partners_basic_credentials_open_nothing(
    http: httpx.AsyncClient, user: UserLogin, tenant: Any
) -> None:
    answer = await http.get(
        "/connectedcar/v4/probe",
        auth=(tenant.login, tenant.password),
        params={"client_id": tenant.client_id},
        headers={"x-introspect-realm": "clientsB2CPeugeot"},
    )
    assert_gateway_401(answer)


async def test_an_expired_token_is_the_gateway_401(
    http: httpx.AsyncClient, user: UserLogin, clock: FakeClock
) -> None:
    assert (await probe(http, user)).status_code == 200
    clock.advance(3600)
    assert_gateway_401(await probe(http, user))


async def test_a_forged_or_altered_token_is_the_gateway_401(
    http: httpx.AsyncClient, user: UserLogin, clock: FakeClock
) -> None:
    header, claims = peek(user.token)
    forged = jwt.encode(header, claims, ECKey.generate_key("P-256", private=True))
    headers = {**user.headers, "Authorization": f"Bearer {forged}"}
    assert_gateway_401(await probe(http, user, headers=headers))
    head, _, signature = user.token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "someone-else"}).encode())
    altered = f"{head}.{payload.rstrip(b'=').decode()}.{signature}"
    headers = {**user.headers, "Authorization": f"Bearer {altered}"}
    assert_gateway_401(await probe(http, user, headers=headers))


async def test_an_id_token_is_not_an_access_token(http: httpx.AsyncClient, user: UserLogin) -> None:
    assert user.id_token is not None
    headers = {**user.headers, "Authorization": f"Bearer {user.id_token}"}
    assert_gateway_401(await probe(http, user, headers=headers))


async def test_client_id_and_realm_are_checked_first_with_xerror(
    http: httpx.AsyncClient, user: UserLogin
) -> None:
    answer = await probe(http, user, params={})
    assert answer.status_code == 401
    assert answer.json()["code"] == 40100
    missing = {"Authorization": user.headers["Authorization"]}
    answer = await probe(http, user, headers=missing)
    assert (answer.status_code, answer.json()["code"]) == (400, 40011)
    unknown = {**user.headers, "x-introspect-realm": "clientsB2CFiat"}
    answer = await probe(http, user, headers=unknown)
    assert (answer.status_code, answer.json()["code"]) == (400, 40011)


async def test_a_revoked_access_token_is_refused_at_once_here(
    http: httpx.AsyncClient, ctx: AppContext, user: UserLogin
) -> None:
    assert (await probe(http, user)).status_code == 200
    async with ctx.database.transaction() as conn:
        await revoke(
            conn, auth=ctx.user_auth, client=user.client, token=user.token, now=ctx.clock()
        )
    assert_gateway_401(await probe(http, user))


async def test_revoking_the_refresh_token_revokes_its_access_tokens_only(
    http: httpx.AsyncClient, ctx: AppContext, user: UserLogin
) -> None:
    second = await relogin(ctx, user, scopes=["remote:horn:write"])
    async with ctx.database.transaction() as conn:
        await revoke(
            conn, auth=ctx.user_auth, client=user.client, token=user.refresh_token, now=ctx.clock()
        )
    assert_gateway_401(await probe(http, user))
    answer = await probe(http, second)
    assert answer.status_code == 200
    assert answer.json()["scopes"] == ["remote:horn:write"]


async def test_another_process_refuses_a_revoked_token_within_a_second(
    db: Database, clock: FakeClock, ctx: AppContext, user: UserLogin
) -> None:
    other_db = Database(db.url, pool_size=2)
    other = context(other_db, clock)
    try:
        transport = httpx.ASGITransport(app=probe_app(other))
        async with httpx.AsyncClient(transport=transport, base_url="https://k.test") as far:
            assert (await probe(far, user)).status_code == 200  # verified and cached there
            async with ctx.database.transaction() as conn:
                await revoke(
                    conn, auth=ctx.user_auth, client=user.client, token=user.token, now=clock()
                )
            revoked_at = time.monotonic()
            while (answer := await probe(far, user)).status_code == 200:
                assert time.monotonic() - revoked_at < 1.0, "still accepted after a second"
                await asyncio.sleep(0.02)
            assert_gateway_401(answer)
    finally:
        await other_db.dispose()


async def test_the_budget_is_per_oauth_client(db: Database, clock: FakeClock) -> None:
    ctx = context(db, clock, rate_limit={"day": 100, "burst": 2})
    first, second = await make_user(ctx), await make_user(ctx)
    transport = httpx.ASGITransport(app=probe_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="https://keyfob.test") as http:
        assert [(await probe(http, first)).status_code for _ in range(2)] == [200, 200]
        refused = await probe(http, first)
        assert refused.status_code == 429
        assert refused.json()["code"] == 42900
        assert refused.headers["x-ratelimit-remaining-2"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await probe(http, second)).status_code == 200
