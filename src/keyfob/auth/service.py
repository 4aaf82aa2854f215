"""Partner accounts and HTTP Basic + ``client_id`` authentication.

A correct login costs one slow hash, then its verdict is cached for a few minutes under a
keyed digest of the credentials (never the password itself), so a busy partner does not pay
scrypt on every request. Changing a password through this module clears the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.models import partners
from keyfob.auth.passwords import hash_password, verify_password
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import new_id
from keyfob.kit.text import shown


@dataclass(frozen=True)
class Partner:
    id: str
    login: str
    client_id: str
    name: str
    rate_limit_day: int | None
    rate_limit_burst: int | None


class CredentialCache:
    """Positive verdicts only, keyed by an HMAC of the credentials with a per-process key."""

    def __init__(self, ttl_s: float = 300.0, max_entries: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[bytes, tuple[float, Partner]] = {}
        self.checking: dict[bytes, asyncio.Future[Partner]] = {}
        """Credentials being verified now, by ``key``: the same ones again wait for that
        verdict instead of paying for (and counting as) a second hash."""

    def key(self, login: str, password: str, client_id: str) -> bytes:
        return self._digest(login, password, client_id)

    def _digest(self, login: str, password: str, client_id: str) -> bytes:
        material = "\0".join((login, password, client_id)).encode()
        # Keyed BLAKE2b is a MAC in one call; HMAC-SHA-256 costs several times as much.
        return hashlib.blake2b(material, key=self._key, digest_size=32).digest()

    def get(self, login: str, password: str, client_id: str) -> Partner | None:
        entry = self._entries.get(self._digest(login, password, client_id))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, login: str, password: str, client_id: str, partner: Partner) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[self._digest(login, password, client_id)] = (
            time.monotonic() + self._ttl,
            partner,
        )

    def clear(self) -> None:
        self._entries.clear()


def _partner(row: Row[Any]) -> Partner:
    return Partner(
        id=row.id,
        login=row.login,
        client_id=row.client_id,
        name=row.name,
        rate_limit_day=row.rate_limit_day,
        rate_limit_burst=row.rate_limit_burst,
    )


async def authenticate(
    conn: AsyncConnection,
    *,
    login: str,
    password: str,
    client_id: str,
    cache: CredentialCache,
) -> Partner:
    cached = cache.get(login, password, client_id)
    if cached is not None:
        return cached
    row = (await conn.execute(select(partners).where(partners.c.login == login))).first()
    if row is None:
        # Same cost as a wrong password, so logins cannot be probed by timing.
        await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
        raise KeyfobError(ErrorCode.BAD_CREDENTIALS)
    valid = await asyncio.to_thread(verify_password, password, row.password_hash)
    if not valid or not hmac.compare_digest(row.client_id, client_id):
        raise KeyfobError(ErrorCode.BAD_CREDENTIALS)
    partner = _partner(row)
    cache.put(login, password, client_id, partner)
    return partner


_DUMMY_HASH = hash_password("not a real password")


async def create_partner(
    conn: AsyncConnection,
    *,
    login: str,
    password: str,
    name: str,
    now: datetime,
    client_id: str | None = None,
) -> Partner:
    existing = (await conn.execute(select(partners.c.id).where(partners.c.login == login))).first()
    if existing is not None:
        raise KeyfobError(ErrorCode.ALREADY_EXISTS, f"a partner with login {login!r} exists")
    values = {
        "id": new_id(),
        "login": login,
        "password_hash": await asyncio.to_thread(hash_password, password),
        "client_id": client_id or new_id(),
        "name": name,
        "rate_limit_day": None,
        "rate_limit_burst": None,
        "created_at": now,
    }
    await conn.execute(partners.insert().values(**values))
    row = (await conn.execute(select(partners).where(partners.c.id == values["id"]))).one()
    return _partner(row)


async def set_password(
    conn: AsyncConnection, *, login: str, password: str, cache: CredentialCache
) -> None:
    hashed = await asyncio.to_thread(hash_password, password)
    result = await conn.execute(
        update(partners).where(partners.c.login == login).values(password_hash=hashed)
    )
    if result.rowcount == 0:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no partner with login {shown(login)}")
    cache.clear()


async def get_partner_by_login(conn: AsyncConnection, login: str) -> Partner | None:
    row = (await conn.execute(select(partners).where(partners.c.login == login))).first()
    return None if row is None else _partner(row)


async def list_partners(conn: AsyncConnection) -> list[Partner]:
    rows = (await conn.execute(select(partners).order_by(partners.c.created_at))).all()
    return [_partner(r) for r in rows]
