"""The authorization server's client endpoints over HTTP: codes for tokens, refresh, revoke,
discovery and the JWKS.

Codes come from a real sign-in through the pages (``oauth_support``); tokens are then used
against the user face's gate, which answers the gateway's 401 once they are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from keyfob.auth.pkce import new_verifier
from keyfob.kit.clock import FakeClock
from oauth_support import (
    APP_REDIRECT,
    GATEWAY_401,
    Registered,
    add_user,
    browser_http,
    register,
    sign_in,
    token_request,
    tokens_for,
    user_face,
)


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_http(app) as client:
        yield client


@pytest.fixture
async def client(app: Any) -> Registered:
    return await register(app.state.ctx)


@pytest.fixture
async def login(app: Any) -> str:
    return await add_user(app.state.ctx)


async def test_a_refresh_rotates_and_the_spent_token_is_refused(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    first = await tokens_for(http, client, login)
    second = await token_request(
        http, client, query=True, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert second.status_code == 200, second.text
    renewed = second.json()
    assert renewed["refresh_token"] != first["refresh_token"]
    assert (await user_face(http, client, renewed["access_token"])).status_code == 200

    again = await token_request(
        http, client, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # A spent refresh token presented again means it leaked: the whole sign-in ends.
    gone = await user_face(http, client, renewed["access_token"])
    assert (gone.status_code, gone.json()) == (401, GATEWAY_401)


async def test_revoking_the_refresh_token_ends_its_access_tokens(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    tokens = await tokens_for(http, client, login)
    assert (await user_face(http, client, tokens["access_token"])).status_code == 200
    answer = await http.post(
        "/am/oauth2/token/revoke",
        params={"realm": "clientsB2CPeugeot", "token": tokens["refresh_token"]},
        headers={"Authorization": client.basic},
    )
    assert answer.status_code == 200, answer.text
    refused = await user_face(http, client, tokens["access_token"])
    assert (refused.status_code, refused.json()) == (401, GATEWAY_401)
    refresh = await token_request(
        http, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.json()["error"] == "invalid_grant"
    again = await http.post(
        "/am/oauth2/token/revoke",
        data={"refresh_token": tokens["refresh_token"]},
        headers={"Authorization": client.basic},
    )
    assert again.status_code == 200  # RFC 7009: revoking twice is no error


async def test_revoking_an_access_token_ends_it_alone_and_only_its_client_may(
    app: Any, http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    tokens = await tokens_for(http, client, login)
    other = await register(app.state.ctx)
    foreign = await http.post(
        "/am/oauth2/token/revoke",
        data={"token": tokens["access_token"]},
        headers={"Authorization": other.basic},
    )
    assert foreign.status_code == 400
    assert (await user_face(http, client, tokens["access_token"])).status_code == 200
    answer = await http.post(
        "/am/oauth2/token/revoke",
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        headers={"Authorization": client.basic},
    )
    assert answer.status_code == 200
    assert (await user_face(http, client, tokens["access_token"])).status_code == 401
    renewed = await token_request(
        http, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert renewed.status_code == 200
    assert (await user_face(http, client, renewed.json()["access_token"])).status_code == 200
    unknown = await http.post(
        "/am/oauth2/token/revoke",
        data={"token": "nothing"},
        headers={"Authorization": client.basic},
    )
    assert unknown.status_code == 200


async def test_a_wrong_pkce_verifier_gets_no_tokens(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    verifier = new_verifier()
    redirect = await sign_in(http, client, login, verifier=verifier)
    params = {"grant_type": "authorization_code", "code": redirect.query["code"]}
    for wrong in (new_verifier(), None):
        extra = {} if wrong is None else {"code_verifier": wrong}
        answer = await token_request(http, client, redirect_uri=APP_REDIRECT, **params, **extra)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    right = await token_request(
        http, client, redirect_uri=APP_REDIRECT, code_verifier=verifier, **params
    )
    assert right.status_code == 200


async def test_a_code_works_once_and_its_reuse_revokes_what_it_gave(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    redirect = await sign_in(http, client, login)
    params = {"grant_type": "authorization_code", "code": redirect.query["code"]}
    first = await token_request(http, client, redirect_uri=APP_REDIRECT, **params)
    assert first.status_code == 200
    token = first.json()["access_token"]
    assert (await user_face(http, client, token)).status_code == 200
    second = await token_request(http, client, redirect_uri=APP_REDIRECT, **params)
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")
    assert (await user_face(http, client, token)).status_code == 401


async def test_a_code_expires_after_a_minute(
    http: httpx.AsyncClient, client: Registered, login: str, clock: FakeClock
) -> None:
    redirect = await sign_in(http, client, login)
    clock.advance(61)
    answer = await token_request(
        http,
        client,
        grant_type="authorization_code",
        code=redirect.query["code"],
        redirect_uri=APP_REDIRECT,
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    assert "expired" in answer.json()["error_description"]


async def test_tokens_belong_to_the_clients_realm(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    tokens = await tokens_for(http, client, login)
    other_realm = await http.get(
        "/connectedcar/v4/user",
        params={"client_id": client.client_id},
        headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "x-introspect-realm": "clientsB2COpel",
        },
    )
    assert (other_realm.status_code, other_realm.json()) == (401, GATEWAY_401)
    wrong = await http.post(
        "/am/oauth2/access_token",
        params={"realm": "clientsB2COpel/OTPOpel"},
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers={"Authorization": client.basic},
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    for spelling in ("clientsB2CPeugeot", "clientsB2CPeugot/OTPPeugeot"):
        right = await http.post(
            "/am/oauth2/access_token",
            params={"realm": spelling},
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers={"Authorization": client.basic},
        )
        assert right.status_code == 200, right.text
        tokens = right.json()


async def test_token_parameters_in_the_query_with_an_empty_body(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    verifier = new_verifier()
    redirect = await sign_in(http, client, login, verifier=verifier)
    answer = await http.post(
        "/am/oauth2/access_token",
        params={
            "grant_type": "authorization_code",
            "code": redirect.query["code"],
            "redirect_uri": APP_REDIRECT,
            "code_verifier": verifier,
        },
        headers={"Authorization": client.basic, "Content-Length": "0"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.request.content == b""


async def test_client_authentication_by_basic_or_form_fields_but_not_both(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    by_form = await tokens_for(http, client, login)
    refreshed = await token_request(
        http,
        client,
        basic=False,
        grant_type="refresh_token",
        refresh_token=by_form["refresh_token"],
    )
    assert refreshed.status_code == 200, refreshed.text
    both = await http.post(
        "/am/oauth2/access_token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed.json()["refresh_token"],
            "client_secret": client.secret or "",
        },
        headers={"Authorization": client.basic},
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")
    wrong = Registered(client.client_id, "not-the-secret", client.redirect_uri, client.realm)
    refused = await token_request(
        http, wrong, grant_type="refresh_token", refresh_token=refreshed.json()["refresh_token"]
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert refused.headers["cache-control"] == "no-store"
    nothing = await http.post("/am/oauth2/access_token", data={"grant_type": "refresh_token"})
    assert (nothing.status_code, nothing.json()["error"]) == (401, "invalid_client")


async def test_token_request_errors_are_rfc_6749_bodies(
    http: httpx.AsyncClient, client: Registered
) -> None:
    for params, error in (
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "redirect_uri": APP_REDIRECT}, "invalid_request"),
        (
            {"grant_type": "authorization_code", "code": "0" * 36, "redirect_uri": APP_REDIRECT},
            "invalid_grant",
        ),
    ):
        answer = await token_request(http, client, **params)
        assert answer.status_code == 400
        assert set(answer.json()) == {"error", "error_description"}
        assert answer.json()["error"] == error
    for where in ("params", "data"):
        nul = await http.post(
            "/am/oauth2/access_token",
            **{where: {"grant_type": "refresh_token", "refresh_token": "a\x00"}},
            headers={"Authorization": client.basic},
        )
        assert (nul.status_code, nul.json()["error"]) == (400, "invalid_request")
    twice = await http.post(
        "/am/oauth2/access_token?grant_type=refresh_token",
        data={"grant_type": "refresh_token"},
        headers={"Authorization": client.basic},
    )
    assert twice.json()["error"] == "invalid_request"
    json_body = await http.post(
        "/am/oauth2/access_token",
        json={"grant_type": "refresh_token"},
        headers={"Authorization": client.basic},
    )
    assert json_body.json()["error"] == "invalid_request"


async def test_discovery_and_the_jwks_let_a_client_check_tokens_across_a_rotation(
    app: Any, http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    tokens = await tokens_for(http, client, login)
    first = await http.get("/.well-known/openid-configuration")
    second = await http.get("/am/oauth2/.well-known/openid-configuration")
    assert first.status_code == 200
    assert first.json() == second.json()
    config = first.json()
    decoded = jwt.decode(tokens["access_token"], _jwks_key(await http.get(config["jwks_uri"])))
    assert config["issuer"] == decoded.claims["iss"]
    assert config["token_endpoint"] == "https://keyfob.test/am/oauth2/access_token"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "remote:door:write" in config["scopes_supported"]

    ctx = app.state.ctx
    async with ctx.database.transaction() as conn:
        await ctx.user_auth.keys.rotate(conn, now=ctx.clock())
    keys = (await http.get("/am/oauth2/connect/jwk_uri")).json()["keys"]
    assert len(keys) == 2
    assert all("d" not in key for key in keys)  # public halves only
    old = jwt.decode(tokens["access_token"], KeySet.import_key_set({"keys": keys}))
    assert old.claims["sub"]
    renewed = await token_request(
        http, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    header = jws.extract_compact(renewed.json()["access_token"].encode()).headers()
    assert header["kid"] == keys[0]["kid"]  # the newest key signs, and is listed first


def _jwks_key(answer: httpx.Response) -> KeySet:
    assert answer.status_code == 200
    return KeySet.import_key_set(answer.json())
