"""The authorization server's pages over HTTP: authorize, log in, consent, the redirect.

Each test acts as the client app and the person at the browser would (``oauth_support``): the
pages are read as HTML and their forms posted back with the cookie the server set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from browser_support import serve
from keyfob.auth.scopes import DATA_SCOPES, REMOTE_SCOPES
from oauth_support import (
    APP_REDIRECT,
    GATEWAY_401,
    PASSWORD,
    Registered,
    add_user,
    authorize_params,
    browser_http,
    page_text,
    read_form,
    redirect_of,
    register,
    sign_in,
    submit,
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


async def test_a_nul_anywhere_is_refused_as_invalid_input(
    http: httpx.AsyncClient, client: Registered, login: str
) -> None:
    for change in ({"client_id": "a\x00b"}, {"state": "\x00"}):
        params = {**authorize_params(client), **change}
        answer = await http.get("/am/oauth2/authorize", params=params)
        assert answer.status_code == 400
        assert "location" not in answer.headers
    page = await http.get("/am/oauth2/authorize", params=authorize_params(client))
    refused = await submit(http, page, login=login + "\x00", password=PASSWORD)
    assert refused.status_code == 400
    assert "U+0000" in page_text(refused.text)
