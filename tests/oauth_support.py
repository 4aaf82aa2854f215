"""Driving ``/am/oauth2`` as a client app and a person at a browser would, over HTTP.

A registered client and a user are made through the auth services; everything after that is
HTTP: the authorize URL, the login form and the consent form read from the served HTML (as a
headless sign-in script reads them), the redirect, then the token endpoint.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from keyfob.auth.clients import create_client
from keyfob.auth.pkce import new_verifier, s256
from keyfob.auth.scopes import ALL_SCOPES
from keyfob.auth.users import create_user
from keyfob.runtime.context import AppContext

PEUGEOT = "clientsB2CPeugot/OTPPeugeot"
APP_REDIRECT = "mymap://oauth2redirect/fr"
WEB_REDIRECT = "https://app.example.com/oauth/callback?tenant=7"
PASSWORD = "correct horse battery staple"
GATEWAY_401 = {
    "httpCode": "401",
    "httpMessage": "Unauthorized",
    "moreInformation": "Token is invalid",
}


@dataclass
class Registered:
    client_id: str
    secret: str | None
    redirect_uri: str
    realm: str

    @property
    def basic(self) -> str:
        raw = f"{self.client_id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


async def register(
    ctx: AppContext,
    *,
    public: bool = False,
    first_party: bool = True,
    scopes: Iterable[str] = ALL_SCOPES,
    redirect_uri: str = APP_REDIRECT,
    realm: str = PEUGEOT,
) -> Registered:
    async with ctx.database.transaction() as conn:
        new = await create_client(
            conn,
            name="My Peugeot" if first_party else "Charge Planner",
            redirect_uris=[redirect_uri, WEB_REDIRECT],
            scopes=scopes,
            realm=realm,
            first_party=first_party,
            public=public,
            now=ctx.clock(),
        )
    return Registered(new.client.client_id, new.secret, redirect_uri, realm)


async def add_user(ctx: AppContext, login: str | None = None) -> str:
    login = login or f"driver-{secrets.token_hex(3)}@example.com"
    async with ctx.database.transaction() as conn:
        await create_user(conn, login=login, password=PASSWORD, now=ctx.clock())
    return login


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    labelled: set[str] = field(default_factory=set)
    """Ids of the inputs a ``<label for>`` names."""
    visible: list[str] = field(default_factory=list)
    """Ids of the inputs a person types into."""


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.labels: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(found.get("action", ""), found.get("method", "get").lower()))
        elif tag == "label" and "for" in found:
            self.labels.add(found["for"])
        elif tag == "input" and self.forms:
            self.forms[-1].fields[found.get("name", "")] = found.get("value", "")
            if found.get("type") != "hidden":
                self.forms[-1].visible.append(found.get("id", ""))
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append((found.get("name", ""), found.get("value", "")))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(" ".join(data.split()))


def read_form(html: str) -> Form:
    """The page's one form, with which of its inputs are labelled."""
    parser = _Forms()
    parser.feed(html)
    assert len(parser.forms) == 1, f"expected one form, found {len(parser.forms)}"
    form = parser.forms[0]
    form.labelled = {i for i in form.visible if i in parser.labels}
    return form


def page_text(html: str) -> str:
    parser = _Forms()
    parser.feed(html)
    return " ".join(parser.text)


def authorize_params(
    client: Registered,
    *,
    scope: str = "openid profile",
    state: str = "st-42",
    verifier: str | None = None,
    **extra: str,
) -> dict[str, str]:
    params = {
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": client.redirect_uri,
        "scope": scope,
        "state": state,
        "locale": "en-GB",
    }
    if verifier is not None:
        params.update(code_challenge=s256(verifier), code_challenge_method="S256")
    params.update(extra)
    return params


async def submit(http: httpx.AsyncClient, page: httpx.Response, **values: str) -> httpx.Response:
    """Fill and post the page's form as a browser would (the named button, if any)."""
    form = read_form(page.text)
    data = {**form.fields, **values}
    data.pop("", None)
    return await http.post(form.action, data=data)


@dataclass
class Redirect:
    location: str
    query: dict[str, str]

    @property
    def target(self) -> str:
        parts = urlsplit(self.location)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


def redirect_of(answer: httpx.Response) -> Redirect:
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    location = answer.headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return Redirect(location, query)


async def sign_in(
    http: httpx.AsyncClient,
    client: Registered,
    login: str,
    *,
    password: str = PASSWORD,
    verifier: str | None = None,
    scope: str = "openid profile",
    state: str = "st-42",
) -> Redirect:
    """Authorize, log in, allow: the redirect the app receives."""
    page = await http.get(
        "/am/oauth2/authorize",
        params=authorize_params(client, scope=scope, state=state, verifier=verifier),
    )
    assert page.status_code == 200, page.text
    consent = await submit(http, page, login=login, password=password)
    assert consent.status_code == 200, consent.text
    return redirect_of(await submit(http, consent, decision="allow"))


async def token_request(
    http: httpx.AsyncClient,
    client: Registered,
    *,
    query: bool = False,
    basic: bool = True,
    **params: str,
) -> httpx.Response:
    """A token request with the parameters in the body, or in the query with an empty body."""
    basic = basic and client.secret is not None
    headers = {"Authorization": client.basic} if basic else {}
    if not basic:
        params = {"client_id": client.client_id, **params}
        if client.secret is not None:
            params["client_secret"] = client.secret
    if query:
        return await http.post("/am/oauth2/access_token", params=params, headers=headers)
    return await http.post("/am/oauth2/access_token", data=params, headers=headers)


async def tokens_for(
    http: httpx.AsyncClient, client: Registered, login: str, **kwargs: Any
) -> dict[str, Any]:
    verifier = new_verifier()
    redirect = await sign_in(http, client, login, verifier=verifier, **kwargs)
    answer = await token_request(
        http,
        client,
        grant_type="authorization_code",
        code=redirect.query["code"],
        redirect_uri=client.redirect_uri,
        code_verifier=verifier,
    )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


@contextlib.asynccontextmanager
async def browser_http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to ``app`` from one address, keeping cookies as a browser does."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)),
        base_url="https://keyfob.test",
    ) as client:
        yield client


async def user_face(http: httpx.AsyncClient, client: Registered, token: str) -> httpx.Response:
    """``GET /connectedcar/v4/user`` with ``token``, as the client's app calls it."""
    return await http.get(
        "/connectedcar/v4/user",
        params={"client_id": client.client_id},
        headers={"Authorization": f"Bearer {token}", "x-introspect-realm": "clientsB2CPeugeot"},
    )
