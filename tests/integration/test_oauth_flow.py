"""The authorization server end to end over HTTP: authorize, log in, consent, code, tokens.

Each test acts as the client app and the person at the browser would (``tests.oauth_support``):
the pages are read as HTML, the forms posted back with the cookie the server set, and the
tokens used against the user face's gate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from browser_support import serve
from keyfob.auth.pkce import new_verifier
from keyfob.auth.scopes import DATA_SCOPES, REMOTE_SCOPES
from keyfob.kit.clock import FakeClock
from oauth_support import (
    APP_REDIRECT,
    PASSWORD,
    Registered,
    add_user,
    authorize_params,
    page_text,
    read_form,
    redirect_of,
    register,
    sign_in,
    submit,
    token_request,
    tokens_for,
)

GATEWAY_401 = {
    "httpCode": "401",
    "httpMessage": "Unauthorized",
    "moreInformation": "Token is invalid",
}


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)),
        base_url="https://keyfob.test",
    ) as client:
        yield client


@pytest.fixture
async def client(app: Any) -> Registered:
    return await register(app.state.ctx)


@pytest.fixture
async def login(app: Any) -> str:
    return await add_user(app.state.ctx)


async def user_face(http: httpx.AsyncClient, client: Registered, token: str) -> httpx.Response:
    return await http.get(
        "/connectedcar/v4/user",
        params={"client_id": client.client_id},
        headers={"Authorization": f"Bearer {token}", "x-introspect-realm": "clientsB2CPeugeot"},
    )


async def test_sign_in_gives_a_code_that_gives_tokens_the_user_face_accepts(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    page = await http.get("/am/oauth2/authorize", params=authorize_params(client))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' mymap:" in policy
    assert "kf_oauth_csrf" in page.headers["set-cookie"]
    assert "Peugeot" in page_text(page.text)
    assert "My Peugeot" in page_text(page.text)
    form = read_form(page.text)
    assert form.method == "post"
    assert form.action == "/am/oauth2/authorize"
    assert form.visible == ["login", "password"]
    assert form.labelled == {"login", "password"}

    consent = await submit(http, page, login=login, password=PASSWORD)
    assert consent.status_code == 200
    text = page_text(consent.text)
    assert "Allow My Peugeot?" in text
    assert login in text
    for scope in ("openid", "remote:door:write", "data:position"):
        assert scope in text  # a first-party client asking openid profile gets everything

    redirect = redirect_of(await submit(http, consent, decision="allow"))
    assert redirect.location.startswith(APP_REDIRECT + "?")
    code = redirect.query["code"]
    assert len(code) == 36
    assert code.count("-") == 4
    assert redirect.query["state"] == "st-42"
    granted = set(redirect.query["scope"].split())
    assert granted >= DATA_SCOPES | REMOTE_SCOPES | {"openid", "profile"}

    answer = await token_request(
        http, client, grant_type="authorization_code", code=code, redirect_uri=APP_REDIRECT
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    tokens = answer.json()
    assert set(tokens) == {
        "access_token",
        "refresh_token",
        "id_token",
        "token_type",
        "expires_in",
        "scope",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0
    assert set(tokens["scope"].split()) == granted
    me = await user_face(http, client, tokens["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["email"] == login


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


async def test_a_public_client_must_send_a_pkce_challenge(
    app: Any, http: httpx.AsyncClient
) -> None:
    public = await register(app.state.ctx, public=True)
    answer = await http.get("/am/oauth2/authorize", params=authorize_params(public))
    redirect = redirect_of(answer)
    assert redirect.query["error"] == "invalid_request"
    assert redirect.query["state"] == "st-42"
    login = await add_user(app.state.ctx)
    tokens = await tokens_for(http, public, login)
    assert tokens["token_type"] == "Bearer"


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


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uri": "mymap://oauth2redirect/de"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": ""},
        {"client_id": "no-such-client"},
    ],
)
async def test_an_unregistered_redirect_uri_or_client_shows_a_page_and_never_redirects(
    http: httpx.AsyncClient, client: Registered, change: dict[str, str]
) -> None:
    params = {**authorize_params(client), **change}
    answer = await http.get("/am/oauth2/authorize", params=params)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "not valid" in page_text(answer.text)
    assert "evil.example" not in answer.text


async def test_other_authorize_errors_go_back_to_the_app(
    http: httpx.AsyncClient, client: Registered
) -> None:
    for change, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"realm": "clientsB2COpel"}, "invalid_request"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ):
        params = {**authorize_params(client), **change}
        redirect = redirect_of(await http.get("/am/oauth2/authorize", params=params))
        assert redirect.target + "" == APP_REDIRECT.split("?")[0]
        assert (redirect.query["error"], redirect.query["state"]) == (error, "st-42")
        assert redirect.query["error_description"]


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


async def test_a_failed_login_says_so_and_the_next_try_can_succeed(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    page = await http.get("/am/oauth2/authorize", params=authorize_params(client))
    failed = await submit(http, page, login=login, password="wrong password")
    assert failed.status_code == 200
    assert "The login or the password is wrong." in page_text(failed.text)
    assert read_form(failed.text).fields["login"] == login  # what was typed stays
    consent = await submit(http, failed, login=login, password=PASSWORD)
    assert "Allow My Peugeot?" in page_text(consent.text)


async def test_repeated_failures_are_throttled_per_account_then_per_address(
    app: Any, http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    limit = app.state.ctx.settings.oauth.login_failures
    page = await http.get("/am/oauth2/authorize", params=authorize_params(client))
    for _ in range(limit):
        page = await submit(http, page, login=login, password="guess")
        assert page.status_code == 200
    throttled = await submit(http, page, login=login, password=PASSWORD)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in page_text(throttled.text)
    other = await add_user(app.state.ctx)
    fine = await submit(http, throttled, login=other, password=PASSWORD)
    assert fine.status_code == 200  # another account from the same address may still try


async def test_the_forms_only_work_with_the_browsers_cookie_and_an_unaltered_flow(
    app: Any, http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    page = await http.get("/am/oauth2/authorize", params=authorize_params(client))
    form = read_form(page.text)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
    ) as stranger:  # another browser: the flow was not bound to its cookie
        forged = await stranger.post(
            form.action, data={**form.fields, "login": login, "password": PASSWORD}
        )
    assert forged.status_code == 403
    assert "expired" in page_text(forged.text)
    body, _, mac = form.fields["flow"].partition(".")
    altered = await http.post(
        form.action,
        data={**form.fields, "flow": body[:-2] + "AA." + mac, "login": login, "password": PASSWORD},
    )
    assert altered.status_code == 403
    skipped = await http.post(form.action, data={**form.fields, "step": "consent"})
    assert skipped.status_code == 403  # the login step's flow cannot approve consent


async def test_denying_consent_tells_the_app(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    page = await http.get("/am/oauth2/authorize", params=authorize_params(client))
    consent = await submit(http, page, login=login, password=PASSWORD)
    redirect = redirect_of(await submit(http, consent, decision="deny"))
    assert redirect.query == {
        "error": "access_denied",
        "error_description": "the user did not allow access",
        "state": "st-42",
    }


async def test_a_third_party_client_is_granted_only_what_it_asked_and_may_have(
    app: Any, http: httpx.AsyncClient, login: str
) -> None:
    client = await register(
        app.state.ctx,
        first_party=False,
        scopes={"openid", "remote:door:write", "data:telemetry"},
    )
    redirect = await sign_in(
        http, client, login, scope="openid remote:door:write remote:horn:write"
    )
    assert set(redirect.query["scope"].split()) == {"openid", "remote:door:write"}


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


async def test_the_whole_flow_over_a_real_server(app: Any, client: Registered, login: str) -> None:
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert url.startswith("http://127.0.0.1:")
        tokens = await tokens_for(http, client, login)
        renewed = await token_request(
            http,
            client,
            query=True,
            grant_type="refresh_token",
            refresh_token=tokens["refresh_token"],
        )
        assert renewed.status_code == 200
        fresh = renewed.json()
        assert (await user_face(http, client, fresh["access_token"])).status_code == 200
        revoked = await http.post(
            "/am/oauth2/token/revoke",
            params={"realm": "clientsB2CPeugeot", "token": fresh["refresh_token"]},
            headers={"Authorization": client.basic},
        )
        assert revoked.status_code == 200
        refused = await user_face(http, client, fresh["access_token"])
        assert (refused.status_code, refused.json()) == (401, GATEWAY_401)
