"""Judging an authorization request (RFC 6749 §4.1.1, PKCE RFC 7636) before any page is shown.

Pure: the caller looks the client up and passes what was registered for it. The order of the
checks is the RFC's: while the client or its redirect URI is in doubt nothing may be sent to
that URI (``Refusal.redirect`` is ``None``: the server shows an error page); once both are
known, every other problem travels back to the client on its redirect URI with ``error``,
``error_description`` and the ``state`` it sent (§4.1.2.1).

    judge(query, client) ─┬─ AuthorizeRequest           show the login page
                          └─ Refusal(redirect=None)     error page, never a redirect
                          └─ Refusal(redirect=uri)      302 uri?error=...&state=...
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from keyfob.auth.oauth_errors import OAuthError
from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import grant_scopes, parse_scopes

MAX_STATE = 2048
MAX_NONCE = 512
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""BASE64URL(SHA-256(verifier)) without padding: always 43 characters."""
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_SINGLE = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "locale",
    "local",
    "realm",
    "nonce",
)


class RegisteredClient(Protocol):
    """What the authorization endpoint needs to know of an OAuth client."""

    @property
    def client_id(self) -> str: ...
    @property
    def redirect_uris(self) -> Sequence[str]: ...
    @property
    def realm(self) -> str: ...
    @property
    def is_public(self) -> bool: ...
    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def first_party(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A request worth a login page: every field checked, scopes not yet granted."""

    client_id: str
    redirect_uri: str
    realm: str
    scopes: tuple[str, ...]
    """What the client will be granted for what it asked (``auth.scopes.grant_scopes``),
    sorted."""
    state: str | None
    code_challenge: str | None
    locale: str | None
    nonce: str | None = None
    """OpenID Connect's ``nonce``, repeated in the ID token."""


@dataclass(frozen=True, slots=True)
class Refusal:
    error: str
    """An RFC 6749 error code (``invalid_request``, ``invalid_scope``, ...)."""
    description: str
    redirect: str | None = None
    """Where to send the error; ``None`` when the redirect URI cannot be trusted."""
    state: str | None = None


def with_query(uri: str, params: Iterable[tuple[str, str | None]]) -> str:
    """``uri`` with ``params`` added to its query (its own parameters kept, ``None`` left out).

    Works for custom schemes too (``mymap://oauth2redirect/fr``).
    """
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))


def error_redirect(refusal: Refusal) -> str:
    assert refusal.redirect is not None
    return with_query(
        refusal.redirect,
        [
            ("error", refusal.error),
            ("error_description", refusal.description),
            ("state", refusal.state),
        ],
    )


def judge(
    query: Sequence[tuple[str, str]], client: RegisteredClient | None
) -> AuthorizeRequest | Refusal:
    """The checked request, or why it is refused and whether the refusal may be redirected.

    ``client`` is the client ``client_id`` names, ``None`` when there is no such client.
    """
    values: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in query:
        if name in values and name in _SINGLE:
            repeated.append(name)
        values.setdefault(name, value)
    if "client_id" in repeated or "redirect_uri" in repeated:
        return Refusal("invalid_request", "client_id and redirect_uri may be given only once")
    if not values.get("client_id"):
        return Refusal("invalid_request", "the client_id parameter is missing")
    if client is None:
        return Refusal("invalid_client", "no OAuth client is registered with this client_id")
    redirect_uri = values.get("redirect_uri")
    if not redirect_uri:
        return Refusal("invalid_request", "the redirect_uri parameter is missing")
    if redirect_uri not in client.redirect_uris:
        return Refusal("invalid_request", "this redirect_uri is not registered for this client")
    return _judge_trusted(values, repeated, client, redirect_uri)


def _judge_trusted(
    values: dict[str, str], repeated: list[str], client: RegisteredClient, redirect_uri: str
) -> AuthorizeRequest | Refusal:
    state = values.get("state")

    def refuse(error: str, description: str) -> Refusal:
        return Refusal(error, description, redirect=redirect_uri, state=state)

    if repeated:
        return refuse("invalid_request", f"{repeated[0]} may be given only once")
    if state is not None and len(state) > MAX_STATE:
        too_long = f"state is longer than {MAX_STATE} characters"
        return Refusal("invalid_request", too_long, redirect=redirect_uri)
    response_type = values.get("response_type")
    if not response_type:
        return refuse("invalid_request", "the response_type parameter is missing")
    if response_type != "code":
        return refuse("unsupported_response_type", "only response_type=code is supported")
    realm_name = values.get("realm")
    if realm_name is not None:
        realm = find_realm(realm_name)
        if realm is None or realm.name != client.realm:
            return refuse("invalid_request", "this client is not registered in that realm")
    challenge = values.get("code_challenge")
    method = values.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            return refuse("invalid_request", "code_challenge_method without code_challenge")
        if client.is_public:
            return refuse("invalid_request", "a public client must send a PKCE code_challenge")
    else:
        if method != "S256":
            return refuse("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.match(challenge):
            return refuse("invalid_request", "code_challenge is not a base64url S256 digest")
    try:
        granted = grant_scopes(
            parse_scopes(values.get("scope")), allowed=client.scopes, first_party=client.first_party
        )
    except OAuthError as refusal:
        return refuse(refusal.error, refusal.description)
    nonce = values.get("nonce")
    if nonce is not None and len(nonce) > MAX_NONCE:
        return refuse("invalid_request", f"nonce is longer than {MAX_NONCE} characters")
    locale = values.get("locale") or values.get("local")
    if locale is not None and not _LOCALE.match(locale):
        locale = None
    return AuthorizeRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        realm=client.realm,
        scopes=tuple(sorted(granted)),
        state=state,
        code_challenge=challenge,
        locale=locale,
        nonce=nonce,
    )
