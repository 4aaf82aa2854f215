"""The ES256 keys keyfob signs its tokens with, kept in the database so every process shares them.

The newest key signs. A key stops signing when a newer one is made (``keyfob admin keys
rotate``) but stays published in the JWKS, and trusted, until every token it can have signed
has expired: ``publish_s`` after its successor appeared, which covers the longest token
lifetime plus the time a process may take to notice the rotation (``reload_s``). So there is
no retirement to record: a key's end follows from its successor's creation, and two processes
that both make a first key at once leave two valid keys, not a conflict.

Each process keeps the keys in memory and reads them again every ``reload_s``, or at once
when a token names a key it does not know (at most once a second, so forged key ids cannot
turn into a query each).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, thumbprint
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.user_models import signing_keys
from keyfob.kit.clock import as_utc

ALGORITHM = "ES256"
LOOKUP_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created_at: datetime
    key: ECKey
    """Holds the private part; ``public`` is what the JWKS shows."""
    public: dict[str, Any]


def _generate() -> tuple[str, ECKey, dict[str, Any]]:
    key = ECKey.generate_key("P-256", private=True)
    kid = thumbprint(key.as_dict(private=False))
    public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": ALGORITHM}
    return kid, ECKey.import_key(key.as_pem(private=True), {"kid": kid}), public


async def rotate_key(conn: AsyncConnection, *, now: datetime, publish_s: float) -> str:
    """Make a new signing key (the current one from now on); forget keys no longer published.

    Returns the new key's id.
    """
    kid, key, public = _generate()
    newest = (await conn.execute(select(func.max(signing_keys.c.created_at)))).scalar()
    if newest is not None and as_utc(newest) >= now:
        now = as_utc(newest) + timedelta(milliseconds=1)  # the new key must sort last
    await conn.execute(
        signing_keys.insert().values(
            kid=kid,
            algorithm=ALGORITHM,
            private_key=key.as_pem(private=True).decode("ascii"),
            public_jwk=public,
            created_at=now,
        )
    )
    created = (
        await conn.execute(select(signing_keys.c.created_at).order_by(signing_keys.c.created_at))
    ).scalars()
    successors = list(created)[1:]
    # A key whose successor is older than publish_s has signed nothing still valid.
    expired_before = [at for at in successors if at + timedelta(seconds=publish_s) <= now]
    if expired_before:
        await conn.execute(
            delete(signing_keys).where(signing_keys.c.created_at < max(expired_before))
        )
    return kid


def published(keys: list[SigningKey], *, now: datetime, publish_s: float) -> list[SigningKey]:
    """Keys (oldest first) still trusted: the newest, and any whose successor is recent."""
    window = timedelta(seconds=publish_s)
    return [
        key
        for key, successor in zip(keys, [*keys[1:], None], strict=True)
        if successor is None or successor.created_at + window > now
    ]


class KeyRing:
    """This process's copy of the signing keys."""

    def __init__(
        self,
        *,
        publish_s: float,
        reload_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publish_s = publish_s
        self.reload_s = reload_s
        self._monotonic = monotonic
        self._keys: list[SigningKey] = []
        self._by_kid: dict[str, SigningKey] = {}
        self._loaded_at = -math.inf
        self._looked_up_at = -math.inf

    async def load(self, conn: AsyncConnection) -> None:
        self._loaded_at = self._looked_up_at = self._monotonic()
        rows = (
            await conn.execute(
                select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
            )
        ).all()
        keys = []
        for row in rows:
            known = self._by_kid.get(row.kid)
            if known is None:
                private = ECKey.import_key(row.private_key.encode("ascii"), {"kid": row.kid})
                known = SigningKey(row.kid, row.created_at, private, dict(row.public_jwk))
            keys.append(known)
        self._keys = keys
        self._by_kid = {key.kid: key for key in keys}

    async def _fresh(self, conn: AsyncConnection) -> list[SigningKey]:
        if not self._keys or self._monotonic() - self._loaded_at >= self.reload_s:
            await self.load(conn)
        return self._keys

    async def signing_key(self, conn: AsyncConnection, *, now: datetime) -> SigningKey:
        """The key to sign with now; the first one is made on first use."""
        keys = await self._fresh(conn)
        if not keys:
            await rotate_key(conn, now=now, publish_s=self.publish_s)
            await self.load(conn)
            keys = self._keys
        return keys[-1]

    async def rotate(self, conn: AsyncConnection, *, now: datetime) -> str:
        kid = await rotate_key(conn, now=now, publish_s=self.publish_s)
        await self.load(conn)
        return kid

    def trusted(self, kid: str, *, now: datetime) -> ECKey | None:
        """The public key for ``kid`` if it may still verify tokens (from memory)."""
        key = self._by_kid.get(kid)
        if key is None:
            return None
        alive = published(self._keys, now=now, publish_s=self.publish_s)
        return key.key if any(k.kid == kid for k in alive) else None

    def should_look_up(self, kid: str) -> bool:
        """An unknown ``kid``, or keys not read for a while: worth reading them again."""
        since = self._monotonic() - self._looked_up_at
        if kid not in self._by_kid:
            return since >= LOOKUP_INTERVAL_S
        return self._monotonic() - self._loaded_at >= self.reload_s

    async def jwks(self, conn: AsyncConnection, *, now: datetime) -> dict[str, Any]:
        """The JWKS document (RFC 7517) of every published key, newest first."""
        keys = await self._fresh(conn)
        alive = published(keys, now=now, publish_s=self.publish_s)
        return {"keys": [dict(key.public) for key in reversed(alive)]}

    async def mac_secrets(self, conn: AsyncConnection, *, now: datetime) -> tuple[bytes, ...]:
        """One secret per published key, newest first: for MACs every process can check
        (derive a purpose-specific key from them; never use them as they are)."""
        await self.signing_key(conn, now=now)
        alive = published(self._keys, now=now, publish_s=self.publish_s)
        return tuple(
            hashlib.sha256(b"keyfob mac secret\0" + k.key.as_der(private=True)).digest()
            for k in reversed(alive)
        )
