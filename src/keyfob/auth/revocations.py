"""Revoked access tokens and grants, as every API process learns of them.

A revocation is a row in ``token_revocations`` (written in the revoking request's unit of
work) and, in the process that wrote it, an entry in memory at once. Other processes read
the rows lazily: a token check that finds the copy older than ``interval_s`` (0.5 s) reads
first, so no process accepts a revoked token more than ``interval_s`` after the revocation
was committed, and an idle process reads nothing. Only one read runs at a time; requests
arriving meanwhile wait for it.

Each read takes the rows created in the last ``lookback_s`` (60 s), not "rows after the last
id seen": on PostgreSQL a row with a smaller id can commit after a larger one, and would be
skipped for ever. A transaction that takes longer than that to commit is the one gap, closed
by a full read every ``full_every_s`` (5 min), which also forgets revocations whose tokens
have all expired.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.user_models import token_revocations
from keyfob.kit.clock import Clock, as_utc
from keyfob.store.engine import Database

TOKEN = "token"  # noqa: S105 - a kind of revocation, not a secret
GRANT = "grant"


async def record_revocation(
    conn: AsyncConnection, *, kind: str, value: str, expires_at: datetime, now: datetime
) -> None:
    """Store a revocation; rows whose tokens have all expired for a day are removed too."""
    await conn.execute(
        token_revocations.insert().values(
            kind=kind, value=value, created_at=now, expires_at=expires_at
        )
    )
    await conn.execute(
        delete(token_revocations).where(token_revocations.c.expires_at < now - timedelta(days=1))
    )


class RevocationList:
    def __init__(
        self,
        database: Database,
        *,
        clock: Clock,
        interval_s: float = 0.5,
        lookback_s: float = 60.0,
        full_every_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._clock = clock
        self.interval_s = interval_s
        self._lookback = timedelta(seconds=lookback_s)
        self._full_every_s = full_every_s
        self._monotonic = monotonic
        self._revoked: dict[tuple[str, str], float] = {}
        """(kind, value) -> when it may be forgotten (unix seconds)."""
        self._read_at = -math.inf
        self._full_at = -math.inf
        self._lock = asyncio.Lock()

    def add(self, kind: str, value: str, expires_at: datetime) -> None:
        """Known here at once (the revoking process need not wait for its own read)."""
        self._revoked[(kind, value)] = as_utc(expires_at).timestamp()

    def is_revoked(self, *, jti: str | None, grant_id: str | None) -> bool:
        revoked = self._revoked
        return (jti is not None and (TOKEN, jti) in revoked) or (
            grant_id is not None and (GRANT, grant_id) in revoked
        )

    def due(self) -> bool:
        return self._monotonic() - self._read_at >= self.interval_s

    async def refresh_if_due(self) -> None:
        if not self.due():
            return
        async with self._lock:
            if self.due():  # another request may have read while this one waited
                await self.refresh()

    async def refresh(self) -> None:
        started = self._monotonic()
        now = self._clock()
        full = started - self._full_at >= self._full_every_s
        query = select(
            token_revocations.c.kind, token_revocations.c.value, token_revocations.c.expires_at
        )
        if full:
            query = query.where(token_revocations.c.expires_at > now)
        else:
            query = query.where(token_revocations.c.created_at >= now - self._lookback)
        async with self._database.read() as conn:
            rows = (await conn.execute(query)).all()
        if full:
            moment = now.timestamp()
            self._revoked = {k: v for k, v in self._revoked.items() if v > moment}
            self._full_at = started
        for kind, value, expires_at in rows:
            self._revoked[(kind, value)] = as_utc(expires_at).timestamp()
        self._read_at = started
