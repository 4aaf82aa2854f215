"""keyfob's own tokens: what an access token and an ID token say, and how they are checked.

Both are ES256 JWTs signed with the current key (``auth.keys``), through joserfc. An access
token (header ``typ: at+jwt``, RFC 9068) carries ``iss``, ``sub`` (the user id), ``aud`` and
``client_id`` (the OAuth client), ``realm`` (canonical), ``scope`` (space-separated), ``exp``,
``iat``, ``jti`` and ``sid``, the grant it belongs to (``auth.user_models``), so revoking the
grant reaches it. An ID token (``typ: JWT``, OpenID Connect Core §2) has ``aud`` = the client
too, which is why the access token's ``typ`` is checked: an ID token is never accepted as an
access token. Refresh tokens are not JWTs: random strings, stored as digests.

Signature checks are joserfc's; this module checks the claims against the injected clock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from keyfob.auth.keys import ALGORITHM, SigningKey
from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import scope_text
from keyfob.config import Settings
from keyfob.errors import InvalidToken

ACCESS_TYP = "at+jwt"
MAX_TOKEN_LENGTH = 8192
LEEWAY_S = 30
"""Clock difference tolerated on ``iat`` (another process's clock may run ahead)."""


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    issuer: str
    access_ttl_s: int
    refresh_ttl_s: int
    id_ttl_s: int
    code_ttl_s: int
    key_reload_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        return cls(
            issuer=issuer_of(settings),
            access_ttl_s=settings.oauth.access_token_ttl_s,
            refresh_ttl_s=settings.oauth.refresh_token_ttl_s,
            id_ttl_s=settings.oauth.id_token_ttl_s,
            code_ttl_s=settings.oauth.code_ttl_s,
            key_reload_s=settings.oauth.key_reload_s,
        )

    @property
    def publish_s(self) -> float:
        """How long a replaced key stays published: its last tokens' lifetime, the time a
        process may still sign with it before noticing, and a minute of clock difference."""
        return max(self.access_ttl_s, self.id_ttl_s) + self.key_reload_s + 60


def issuer_of(settings: Settings) -> str:
    if settings.oauth_issuer:
        return settings.oauth_issuer.rstrip("/")
    return f"{settings.root_url}/am/oauth2"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """A verified access token, keyfob's or an external issuer's."""

    user_id: str
    client_id: str
    realm: str
    scopes: frozenset[str]
    expires_at: float
    """Unix seconds."""
    jti: str | None
    grant_id: str | None


def mint_access_token(
    key: SigningKey,
    *,
    policy: TokenPolicy,
    user_id: str,
    client_id: str,
    realm: str,
    scopes: frozenset[str],
    grant_id: str,
    now: datetime,
) -> tuple[str, AccessClaims]:
    issued = int(now.timestamp())
    expires = issued + policy.access_ttl_s
    jti = secrets.token_hex(16)
    claims = {
        "iss": policy.issuer,
        "sub": user_id,
        "aud": client_id,
        "client_id": client_id,
        "realm": realm,
        "scope": scope_text(scopes),
        "iat": issued,
        "exp": expires,
        "jti": jti,
        "sid": grant_id,
    }
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": ACCESS_TYP}
    token = jwt.encode(header, claims, key.key, algorithms=[ALGORITHM])
    return token, AccessClaims(user_id, client_id, realm, scopes, expires, jti, grant_id)


def mint_id_token(
    key: SigningKey,
    *,
    policy: TokenPolicy,
    user_id: str,
    client_id: str,
    now: datetime,
    nonce: str | None = None,
    profile: dict[str, str] | None = None,
) -> str:
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": policy.issuer,
        "sub": user_id,
        "aud": client_id,
        "azp": client_id,
        "iat": issued,
        "exp": issued + policy.id_ttl_s,
        **(profile or {}),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key.key, algorithms=[ALGORITHM])


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, NOT verified: only to choose who verifies it."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too long")
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = orjson.loads(compact.payload)
    except (JoseError, UnicodeEncodeError, ValueError) as exc:
        raise InvalidToken(f"not a JWS: {exc}") from None
    if not isinstance(claims, dict):
        raise InvalidToken("claims are not an object")
    return dict(compact.headers()), claims


def verify_signature(token: str, key: ECKey) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise InvalidToken(f"signature: {exc}") from None
    return dict(decoded.header), dict(decoded.claims)


def check_times(claims: dict[str, Any], *, now: float) -> float:
    """``exp`` (returned) is in the future and ``iat``, if any, not in it."""
    expires, issued = claims.get("exp"), claims.get("iat", now)
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise InvalidToken("no exp")
    if expires <= now:
        raise InvalidToken("expired")
    if not isinstance(issued, int | float) or issued > now + LEEWAY_S:
        raise InvalidToken("issued in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + LEEWAY_S:
        raise InvalidToken("not yet valid")
    return float(expires)


def read_access_token(token: str, key: ECKey, *, issuer: str, now: float) -> AccessClaims:
    """Verify one of keyfob's own access tokens with ``key`` (chosen by its ``kid``)."""
    header, claims = verify_signature(token, key)
    if header.get("typ") != ACCESS_TYP:
        raise InvalidToken("not an access token")
    if claims.get("iss") != issuer:
        raise InvalidToken("another issuer")
    expires = check_times(claims, now=now)
    fields = [claims.get(name) for name in ("sub", "client_id", "realm", "scope", "jti", "sid")]
    if not all(isinstance(value, str) and value for value in fields[:3]) or not all(
        isinstance(value, str) for value in fields[3:]
    ):
        raise InvalidToken("claims missing")
    realm = find_realm(claims["realm"])
    if realm is None:
        raise InvalidToken("unknown realm")
    return AccessClaims(
        user_id=claims["sub"],
        client_id=claims["client_id"],
        realm=realm.name,
        scopes=frozenset(claims["scope"].split()),
        expires_at=expires,
        jti=claims["jti"],
        grant_id=claims["sid"],
    )
