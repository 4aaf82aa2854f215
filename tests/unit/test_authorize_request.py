"""Judging an authorization request: what is shown as a page, what goes back to the client."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from keyfob.auth.authorize import (
    AuthorizeRequest,
    Refusal,
    error_redirect,
    judge,
    with_query,
)
from keyfob.auth.flow import Flow, FlowSealer, cookie_digest, derive_key, new_cookie
from keyfob.auth.scopes import ALL_SCOPES, DATA_SCOPES, REMOTE_SCOPES

APP = "mymap://oauth2redirect/fr"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 50).digest()).rstrip(b"=").decode()


@dataclass
class Client:
    client_id: str = "app"
    redirect_uris: tuple[str, ...] = (APP, "https://app.example/cb?tenant=7")
    realm: str = "clientsB2CPeugot/OTPPeugeot"
    is_public: bool = False
    scopes: frozenset[str] = ALL_SCOPES
    first_party: bool = True


def ask(client: Client | None = None, **params: str) -> AuthorizeRequest | Refusal:
    base = {"client_id": "app", "response_type": "code", "redirect_uri": APP, "state": "s1"}
    base.update(params)
    return judge(list(base.items()), client if client is not None else Client())


def test_a_good_request_keeps_what_was_asked() -> None:
    found = ask(scope="openid profile", locale="en-GB", nonce="n-1")
    assert found == AuthorizeRequest(
        client_id="app",
        redirect_uri=APP,
        realm="clientsB2CPeugot/OTPPeugeot",
        scopes=tuple(sorted(ALL_SCOPES)),
        state="s1",
        code_challenge=None,
        locale="en-GB",
        nonce="n-1",
    )


def test_the_documented_local_parameter_is_read_as_the_locale() -> None:
    found = ask(local="fr_FR")
    assert isinstance(found, AuthorizeRequest)
    assert found.locale == "fr_FR"


def test_an_unknown_client_is_never_redirected() -> None:
    found = judge([("client_id", "who"), ("redirect_uri", APP)], None)
    assert isinstance(found, Refusal)
    assert found.redirect is None


@pytest.mark.parametrize(
    "uri", ["mymap://oauth2redirect/de", "https://app.example/cb", "MYMAP://oauth2redirect/fr", ""]
)
def test_a_redirect_uri_must_match_a_registered_one_exactly(uri: str) -> None:
    found = ask(redirect_uri=uri)
    assert isinstance(found, Refusal)
    assert found.redirect is None


def test_a_repeated_redirect_uri_is_not_trusted() -> None:
    query = [("client_id", "app"), ("redirect_uri", APP), ("redirect_uri", "https://evil.example")]
    found = judge(query, Client())
    assert isinstance(found, Refusal)
    assert found.redirect is None


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"code_challenge": CHALLENGE, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": CHALLENGE}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
        ({"realm": "clientsB2COpel"}, "invalid_request"),
        ({"realm": "nowhere"}, "invalid_request"),
        ({"state": "x" * 2049}, "invalid_request"),
    ],
)
def test_other_errors_go_back_to_the_client_with_its_state(
    params: dict[str, str], error: str
) -> None:
    found = ask(**params)
    assert isinstance(found, Refusal)
    assert (found.error, found.redirect) == (error, APP)
    sent = parse_qs(urlsplit(error_redirect(found)).query)
    assert sent["error"] == [error]
    assert sent["error_description"][0]
    assert sent.get("state") == (None if "state" in params else ["s1"])


def test_a_public_client_must_use_pkce() -> None:
    refused = ask(Client(is_public=True))
    assert isinstance(refused, Refusal)
    assert refused.redirect == APP
    found = ask(Client(is_public=True), code_challenge=CHALLENGE, code_challenge_method="S256")
    assert isinstance(found, AuthorizeRequest)
    assert found.code_challenge == CHALLENGE


def test_either_realm_spelling_of_the_clients_realm_is_accepted() -> None:
    for spelling in ("clientsB2CPeugeot", "clientsB2CPeugot/OTPPeugeot"):
        assert isinstance(ask(realm=spelling), AuthorizeRequest)


def test_a_third_party_client_gets_what_it_asked_and_may_have() -> None:
    client = Client(first_party=False, scopes=frozenset({"openid", "remote:door:write"}))
    found = ask(client, scope="openid,remote:door:write remote:horn:write")
    assert isinstance(found, AuthorizeRequest)
    assert found.scopes == ("openid", "remote:door:write")


def test_a_first_party_client_asking_openid_profile_gets_every_data_and_remote_scope() -> None:
    found = ask(scope="openid profile")
    assert isinstance(found, AuthorizeRequest)
    assert set(found.scopes) >= DATA_SCOPES | REMOTE_SCOPES
    narrower = ask(scope="openid remote:door:write")
    assert isinstance(narrower, AuthorizeRequest)
    assert narrower.scopes == ("openid", "remote:door:write")


def test_scopes_the_client_may_not_have_are_refused_on_its_redirect_uri() -> None:
    client = Client(first_party=False, scopes=frozenset({"openid"}))
    found = ask(client, scope="remote:door:write")
    assert isinstance(found, Refusal)
    assert (found.error, found.redirect, found.state) == ("invalid_scope", APP, "s1")


def test_with_query_keeps_the_registered_query_and_custom_schemes() -> None:
    assert with_query("https://app.example/cb?tenant=7", [("code", "c"), ("state", None)]) == (
        "https://app.example/cb?tenant=7&code=c"
    )
    assert with_query(APP, [("code", "c d")]) == "mymap://oauth2redirect/fr?code=c+d"


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def flow(cookie: str, **changes: object) -> Flow:
    values: dict[str, object] = {
        "step": "login",
        "client_id": "app",
        "redirect_uri": APP,
        "realm": "clientsB2CPeugot/OTPPeugeot",
        "scopes": ("openid",),
        "state": "s1",
        "code_challenge": None,
        "locale": None,
        "csrf": cookie_digest(cookie),
        "expires": int((NOW + timedelta(minutes=1)).timestamp()),
    }
    values.update(changes)
    return Flow(**values)  # type: ignore[arg-type]


def test_a_sealed_flow_opens_in_the_browser_it_is_bound_to() -> None:
    sealer = FlowSealer([derive_key(b"shared")])
    cookie = new_cookie()
    token = sealer.seal(flow(cookie))
    assert sealer.open(token, cookie=cookie, step="login", now=NOW) == flow(cookie)
    assert sealer.open(token, cookie=new_cookie(), step="login", now=NOW) is None
    assert sealer.open(token, cookie=None, step="login", now=NOW) is None
    assert sealer.open(token, cookie=cookie, step="consent", now=NOW) is None
    later = NOW + timedelta(minutes=2)
    assert sealer.open(token, cookie=cookie, step="login", now=later) is None


def test_a_flow_altered_or_sealed_with_another_key_is_refused() -> None:
    cookie = new_cookie()
    sealer = FlowSealer([derive_key(b"shared")])
    token = sealer.seal(flow(cookie))
    other = FlowSealer([derive_key(b"other")]).seal(flow(cookie, user_id="mallory"))
    body, _, mac = token.partition(".")
    tampered = sealer.seal(flow(cookie, user_id="mallory")).partition(".")[0] + "." + mac
    for bad in (other, tampered, body, "", "a.b", token + "x"):
        assert sealer.open(bad, cookie=cookie, step="login", now=NOW) is None


def test_a_rotated_key_still_opens_flows_sealed_before_the_rotation() -> None:
    cookie = new_cookie()
    old = FlowSealer([derive_key(b"old")]).seal(flow(cookie))
    both = FlowSealer([derive_key(b"new"), derive_key(b"old")])
    assert both.open(old, cookie=cookie, step="login", now=NOW) is not None
