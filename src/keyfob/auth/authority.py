"""``UserAuth``: the user face's token authority of one process, built once per context.

It holds what every check of a Bearer token needs and must not rebuild per request: the
signing keys (``auth.keys``), the revocations (``auth.revocations``), the verified-token
cache, the sign-in throttle and, when configured, the external issuer. ``principal(token)``
is the accept path:

    token ─► cache hit? ──yes──► expired? revoked? ─► UserPrincipal
               │ no
               ▼
             peek iss ─► keyfob's: key by kid (read keys again if unknown) ─► verify ─┐
                      └► oidc_issuer's: its JWKS ─► verify ─► map to a keyfob user ───┤
                                                                                      ▼
                                                           revoked? ─► cache ─► UserPrincipal

A token is verified once per process and then served from the cache, keyed by a keyed
digest of the token (the token itself is not kept), bounded in size and never past the
token's ``exp``. Revocations are re-read at most every ``revocation_poll_s`` before any
answer, so a cached token is refused as soon as its revocation is known.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from keyfob.auth.external import ExternalConfig, ExternalIssuer
from keyfob.auth.keys import KeyRing
from keyfob.auth.principal import UserPrincipal
from keyfob.auth.revocations import RevocationList
from keyfob.auth.throttle import LoginThrottle
from keyfob.auth.tokens import AccessClaims, TokenPolicy, peek, read_access_token
from keyfob.auth.users import get_user, get_user_by_login
from keyfob.config import Settings
from keyfob.errors import InvalidToken
from keyfob.kit.clock import Clock
from keyfob.store.engine import Database

if TYPE_CHECKING:  # imported where an external issuer is set up: most processes never need it
    import httpx


@dataclass(frozen=True, slots=True)
class Verified:
    principal: UserPrincipal
    expires_at: float
    jti: str | None
    grant_id: str | None


class VerifiedTokens:
    """Verified tokens by keyed BLAKE2b digest; the oldest entry goes when it is full."""

    def __init__(self, max_entries: int) -> None:
        self._key = secrets.token_bytes(32)
        self._max = max_entries
        self._entries: dict[bytes, Verified] = {}

    def _digest(self, token: str) -> bytes:
        return hashlib.blake2b(token.encode(), key=self._key, digest_size=32).digest()

    def get(self, token: str) -> Verified | None:
        return self._entries.get(self._digest(token))

    def put(self, token: str, verified: Verified) -> None:
        entries = self._entries
        if len(entries) >= self._max:
            del entries[next(iter(entries))]
        entries[self._digest(token)] = verified

    def __len__(self) -> int:
        return len(self._entries)


class UserAuth:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        oauth = settings.oauth
        self.policy = TokenPolicy.from_settings(settings)
        self.database = database
        self.clock = clock
        self.keys = KeyRing(
            publish_s=self.policy.publish_s, reload_s=oauth.key_reload_s, monotonic=monotonic
        )
        self.revocations = RevocationList(
            database, clock=clock, interval_s=oauth.revocation_poll_s, monotonic=monotonic
        )
        self.cache = VerifiedTokens(oauth.token_cache_size)
        self.throttle = LoginThrottle(
            per_account=oauth.login_failures,
            per_address=oauth.login_failures_per_address,
            window_s=oauth.login_window_s,
        )
        external = ExternalConfig.from_settings(settings)
        self.external = None
        if external is not None:
            if http is None:
                import httpx  # here: every process would load it, few need it

                http = httpx.AsyncClient(timeout=10.0)
            self.external = ExternalIssuer(external, http, monotonic=monotonic)

    async def principal(self, token: str) -> UserPrincipal:
        """Who this Bearer token speaks for, or ``InvalidToken`` (the gateway's 401)."""
        await self.revocations.refresh_if_due()
        now = self.clock().timestamp()
        found = self.cache.get(token)
        if found is None:
            found = await self._verify(token, now)
            self.cache.put(token, found)
        if found.expires_at <= now:
            raise InvalidToken("expired")
        if self.revocations.is_revoked(jti=found.jti, grant_id=found.grant_id):
            raise InvalidToken("revoked")
        return found.principal

    async def _verify(self, token: str, now: float) -> Verified:
        header, claims = peek(token)
        issuer = claims.get("iss")
        if issuer == self.policy.issuer:
            access = await self._own(token, header, now)
        elif self.external is not None and issuer == self.external.config.issuer:
            access = await self._external(token, header, now)
        else:
            raise InvalidToken("unknown issuer")
        principal = UserPrincipal(access.user_id, access.client_id, access.realm, access.scopes)
        return Verified(principal, access.expires_at, access.jti, access.grant_id)

    async def _own(self, token: str, header: dict[str, object], now: float) -> AccessClaims:
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("no kid")
        moment = datetime.fromtimestamp(now, UTC)
        key = self.keys.trusted(kid, now=moment)
        if key is None and self.keys.should_look_up(kid):
            async with self.database.read() as conn:
                await self.keys.load(conn)
            key = self.keys.trusted(kid, now=moment)
        if key is None:
            raise InvalidToken("unknown or retired key")
        return read_access_token(token, key, issuer=self.policy.issuer, now=now)

    async def _external(self, token: str, header: dict[str, object], now: float) -> AccessClaims:
        assert self.external is not None
        claims = await self.external.verify(token, dict(header), now=now)
        async with self.database.read() as conn:
            if self.external.config.user_field == "id":
                user = await get_user(conn, claims.user)
            else:
                user = await get_user_by_login(conn, claims.user)
        if user is None:
            raise InvalidToken("the external user is no keyfob user")
        return AccessClaims(
            user.id,
            claims.client_id,
            claims.realm,
            claims.scopes,
            claims.expires_at,
            claims.jti,
            None,
        )
