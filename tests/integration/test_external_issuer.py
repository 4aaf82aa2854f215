"""An external OpenID Connect issuer's access tokens at the v4 gate, on both engines.

The issuer is made here: its own RSA keys, its discovery document and JWKS served through an
``httpx.MockTransport`` handed to keyfob (no network). keyfob's own tokens keep working
beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from conftest import make_settings
from keyfob.auth.authority import UserAuth
from keyfob.auth.users import create_user, get_user_by_login
from keyfob.kit.clock import FakeClock
from keyfob.runtime.context import AppContext, build_context
from keyfob.store.engine import Database
from user_support import make_user, probe_app

ISSUER = "https://login.example.test/realms/cars"
GATEWAY = {"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "Token is invalid"}


@dataclass
class Issuer:
    """A tiny identity provider: keys, a discovery document and a JWKS endpoint."""

    clock: FakeClock
    keys: list[RSAKey] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    down: bool = False

    def new_key(self, kid: str) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256"}, private=True)
        self.keys.append(key)
        return key

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            return httpx.Response(503)
        if request.url.path == "/realms/cars/.well-known/openid-configuration":
            return httpx.Response(
                200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/protocol/openid-connect/certs"}
            )
        if request.url.path == "/realms/cars/protocol/openid-connect/certs":
            return httpx.Response(200, json=KeySet(list(self.keys)).as_dict(private=False))
        return httpx.Response(404)

    def token(self, key: RSAKey, **claims: Any) -> str:
        now = int(self.clock().timestamp())
        body = {
            "iss": ISSUER,
            "aud": ["account", "keyfob"],
            "sub": "ann@example.com",
            "azp": "ha-integration",
            "realm": "clientsB2CCitroen",
            "scope": "openid remote:door:write",
            "iat": now,
            "exp": now + 300,
            "jti": "ext-1",
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


class Monotonic:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer(clock: FakeClock) -> Issuer:
    return Issuer(clock)


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


def external_context(
    db: Database, clock: FakeClock, issuer: Issuer, monotonic: Monotonic, **more: Any
) -> AppContext:
    settings = make_settings(db.url, oidc_issuer=ISSUER, oidc_audience="keyfob", **more)
    ctx = build_context(settings, database=db, clock=clock)
    http = httpx.AsyncClient(transport=httpx.MockTransport(issuer.handle))
    ctx.user_auth = UserAuth(settings, db, clock=clock, http=http, monotonic=monotonic)
    return ctx


@pytest.fixture
async def ctx(db: Database, clock: FakeClock, issuer: Issuer, monotonic: Monotonic) -> AppContext:
    ctx = external_context(db, clock, issuer, monotonic)
    async with db.transaction() as conn:
        await create_user(conn, login="ann@example.com", password="pw", now=clock())
    return ctx


@pytest.fixture
async def http(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="https://keyfob.test") as client:
        yield client


async def call(
    http: httpx.AsyncClient,
    token: str,
    *,
    client: str = "ha-integration",
    realm: str = "clientsB2CCitroen",
) -> httpx.Response:
    return await http.get(
        "/connectedcar/v4/probe",
        params={"client_id": client},
        headers={"Authorization": f"Bearer {token}", "x-introspect-realm": realm},
    )


async def test_an_external_token_maps_to_the_keyfob_user_of_that_login(
    http: httpx.AsyncClient, ctx: AppContext, issuer: Issuer
) -> None:
    key = issuer.new_key("k1")
    answer = await call(http, issuer.token(key))
    assert answer.status_code == 200, answer.text
    async with ctx.database.read() as conn:
        ann = await get_user_by_login(conn, "ann@example.com")
    assert ann is not None
    assert answer.json() == {
        "user": ann.id,
        "client": "ha-integration",
        "realm": "clientsB2CCitroen/OTPCitroen",
        "scopes": ["openid", "remote:door:write"],
    }
    assert issuer.requests == [
        "/realms/cars/.well-known/openid-configuration",
        "/realms/cars/protocol/openid-connect/certs",
    ]
    assert (await call(http, issuer.token(key, jti="ext-2"))).status_code == 200
    assert len(issuer.requests) == 2, "the key set is kept, not fetched per token"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "nobody@example.com"},
        {"aud": "someone-else"},
        {"iss": "https://login.example.test/realms/other"},
        {"exp": 1},
        {"realm": "clientsB2CFiat"},
        {"azp": None},
    ],
    ids=["unknown user", "audience", "issuer", "expired", "realm", "no client"],
)
async def test_external_tokens_that_do_not_fit_are_the_gateway_401(
    http: httpx.AsyncClient, issuer: Issuer, claims: dict[str, Any]
) -> None:
    key = issuer.new_key("k1")
    answer = await call(http, issuer.token(key, **claims))
    assert (answer.status_code, answer.json()) == (401, GATEWAY)


async def test_the_realm_and_client_of_the_request_must_be_the_tokens(
    http: httpx.AsyncClient, issuer: Issuer
) -> None:
    token = issuer.token(issuer.new_key("k1"))
    assert (await call(http, token, realm="clientsB2CPeugeot")).status_code == 401
    assert (await call(http, token, client="another-app")).status_code == 401


async def test_a_key_the_issuer_does_not_publish_is_refused(
    http: httpx.AsyncClient, issuer: Issuer
) -> None:
    issuer.new_key("k1")
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    answer = await call(http, issuer.token(stranger))
    assert (answer.status_code, answer.json()) == (401, GATEWAY)


async def test_a_rotated_issuer_key_is_fetched_once_then_kept(
    http: httpx.AsyncClient, issuer: Issuer, monotonic: Monotonic
) -> None:
    first = issuer.new_key("k1")
    assert (await call(http, issuer.token(first))).status_code == 200
    fetched = len(issuer.requests)
    monotonic.now += 60
    second = issuer.new_key("k2")
    assert (await call(http, issuer.token(second, jti="ext-2"))).status_code == 200
    assert len(issuer.requests) == fetched + 2
    unknown = RSAKey.generate_key(2048, parameters={"kid": "k9"}, private=True)
    for index in range(3):
        answer = await call(http, issuer.token(unknown, jti=f"x-{index}"))
        assert answer.status_code == 401
    assert len(issuer.requests) == fetched + 2, "unknown key ids do not refetch every time"


async def test_keyfobs_own_tokens_still_work_beside_the_issuer(
    http: httpx.AsyncClient, ctx: AppContext
) -> None:
    own = await make_user(ctx)
    answer = await http.get("/connectedcar/v4/probe", params=own.params, headers=own.headers)
    assert answer.status_code == 200


async def test_a_fixed_realm_users_by_id_and_a_list_of_scopes(
    db: Database, clock: FakeClock, issuer: Issuer, monotonic: Monotonic
) -> None:
    ctx = external_context(
        db,
        clock,
        issuer,
        monotonic,
        oidc_realm="clientsB2COpel",
        oidc_user_field="id",
        oidc_scope_claim="scp",
        oidc_client_claim="cid",
        oidc_jwks_uri=f"{ISSUER}/protocol/openid-connect/certs",
    )
    async with db.transaction() as conn:
        ann = await create_user(conn, login="ann@example.com", password="pw", now=clock())
    key = issuer.new_key("k1")
    token = issuer.token(key, sub=ann.id, scp=["remote:horn:write"], cid="app-7", realm=None)
    transport = httpx.ASGITransport(app=probe_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="https://keyfob.test") as http:
        answer = await call(http, token, client="app-7", realm="clientsB2COpel/OTPOpel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"] == ann.id
    assert answer.json()["scopes"] == ["remote:horn:write"]
    assert issuer.requests == ["/realms/cars/protocol/openid-connect/certs"]


async def test_an_issuer_that_is_down_is_asked_again_only_after_a_while(
    http: httpx.AsyncClient, issuer: Issuer, monotonic: Monotonic
) -> None:
    key = issuer.new_key("k1")
    issuer.down = True
    for index in range(3):
        answer = await call(http, issuer.token(key, jti=f"d-{index}"))
        assert (answer.status_code, answer.json()) == (401, GATEWAY)
    assert len(issuer.requests) == 1, "one attempt, not one per token"
    issuer.down = False
    assert (await call(http, issuer.token(key, jti="d-9"))).status_code == 401
    assert len(issuer.requests) == 1, "asked again only after min_refetch_s"
    monotonic.now += 10
    assert (await call(http, issuer.token(key, jti="d-10"))).status_code == 200
