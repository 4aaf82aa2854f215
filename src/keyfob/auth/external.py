"""Access tokens of an external identity provider, for deployments that already have one.

With ``oidc_issuer`` set, the user face also accepts JWTs whose ``iss`` is that issuer,
verified against its JWKS (from ``oidc_jwks_uri``, or the ``jwks_uri`` of its discovery
document). The key set is fetched over an injected ``httpx.AsyncClient``, kept for an hour,
and fetched again at once when a token names a key it does not hold (the issuer rotated), at
most every ``min_refetch_s`` so unknown key ids cannot make keyfob hammer the issuer.

What keyfob needs from such a token comes from claims named by configuration: the user
(``oidc_user_claim``, matched to a keyfob user's login or id by ``auth.authority``), the
OAuth client (``oidc_client_claim``, else ``azp``), the realm (``oidc_realm_claim``, or the
fixed ``oidc_realm``) and the scopes (``oidc_scope_claim``, a space-separated string or a
list). ``aud`` must contain ``oidc_audience``. Revoking such a token is the issuer's business:
it is accepted until it expires.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from keyfob.auth.realms import find_realm
from keyfob.auth.tokens import check_times
from keyfob.config import Settings
from keyfob.errors import InvalidToken

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("keyfob.auth")

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


@dataclass(frozen=True, slots=True)
class ExternalConfig:
    issuer: str
    audience: str
    jwks_uri: str | None
    user_claim: str
    user_field: str
    """``login`` or ``id``: which keyfob user field the user claim names."""
    client_claim: str
    realm_claim: str
    realm: str | None
    scope_claim: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ExternalConfig | None:
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_audience:
            raise ValueError("oidc_audience is required when oidc_issuer is set")
        fixed = None
        if settings.oidc_realm is not None:
            realm = find_realm(settings.oidc_realm)
            if realm is None:
                raise ValueError(f"oidc_realm {settings.oidc_realm!r} names no realm")
            fixed = realm.name
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_uri=settings.oidc_jwks_uri,
            user_claim=settings.oidc_user_claim,
            user_field=settings.oidc_user_field,
            client_claim=settings.oidc_client_claim,
            realm_claim=settings.oidc_realm_claim,
            realm=fixed,
            scope_claim=settings.oidc_scope_claim,
        )


@dataclass(frozen=True, slots=True)
class ExternalClaims:
    user: str
    """The user claim's value, to match against ``ExternalConfig.user_field``."""
    client_id: str
    realm: str
    scopes: frozenset[str]
    expires_at: float
    jti: str | None


class ExternalIssuer:
    def __init__(
        self,
        config: ExternalConfig,
        http: httpx.AsyncClient,
        *,
        max_age_s: float = 3600.0,
        min_refetch_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._http = http
        self._max_age_s = max_age_s
        self._min_refetch_s = min_refetch_s
        self._monotonic = monotonic
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = -math.inf
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        import httpx  # here: only a deployment with an external issuer needs it

        self._fetched_at = self._monotonic()
        try:
            uri = self.config.jwks_uri or await self._discover()
            answer = await self._http.get(uri, headers={"Accept": "application/json"})
            answer.raise_for_status()
            keys = KeySet.import_key_set(answer.json())
        except (httpx.HTTPError, JoseError, ValueError, KeyError, TypeError) as exc:
            log.warning("cannot read the JWKS of %s: %s", self.config.issuer, exc)
            return
        self._keys = keys
        self._kids = frozenset(k.kid for k in keys.keys if k.kid)

    async def _discover(self) -> str:
        url = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
        answer = await self._http.get(url, headers={"Accept": "application/json"})
        answer.raise_for_status()
        document = answer.json()
        if document.get("issuer") != self.config.issuer:
            raise ValueError(f"the discovery document names issuer {document.get('issuer')!r}")
        return str(document["jwks_uri"])

    async def _key_set(self, kid: str | None) -> KeySet:
        age = self._monotonic() - self._fetched_at
        stale = self._keys is None or age >= self._max_age_s
        unknown = kid is not None and kid not in self._kids and age >= self._min_refetch_s
        if stale or unknown:
            async with self._lock:
                # Another request may have fetched while this one waited; an issuer that is
                # down is asked again only every min_refetch_s, however many tokens arrive.
                if self._monotonic() - self._fetched_at >= self._min_refetch_s:
                    await self._fetch()
        if self._keys is None:
            raise InvalidToken("the issuer's keys are unavailable")
        return self._keys

    async def verify(self, token: str, header: dict[str, Any], *, now: float) -> ExternalClaims:
        kid = header.get("kid")
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"external signature: {exc}") from None
        return self.claims(dict(decoded.claims), now=now)

    def claims(self, claims: dict[str, Any], *, now: float) -> ExternalClaims:
        config = self.config
        if claims.get("iss") != config.issuer:
            raise InvalidToken("another issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if config.audience not in audiences:
            raise InvalidToken("another audience")
        expires = check_times(claims, now=now)
        user = claims.get(config.user_claim)
        client = claims.get(config.client_claim) or claims.get("azp")
        if not isinstance(user, str) or not user or not isinstance(client, str) or not client:
            raise InvalidToken("no user or client claim")
        realm = config.realm
        if realm is None:
            found = find_realm(str(claims.get(config.realm_claim)))
            if found is None:
                raise InvalidToken("no known realm claim")
            realm = found.name
        raw = claims.get(config.scope_claim, "")
        if isinstance(raw, str):
            scopes = frozenset(raw.split())
        elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
            scopes = frozenset(raw)
        else:
            raise InvalidToken("scope claim is neither a string nor a list of strings")
        jti = claims.get("jti")
        return ExternalClaims(
            user, client, realm, scopes, expires, jti if isinstance(jti, str) else None
        )
