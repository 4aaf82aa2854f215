"""Leases kept alive while their notifications wait: a queued POST is not a crashed worker.

A claim leases rows for ``lease_s`` so that a crashed worker's rows come back. But a claimed
POST may wait behind its receiver's concurrency limit (``max_connections_per_host``) for longer
than that: the lease then ran out while the worker was alive, another claim took the rows again,
and a slow receiver got the same notification twice. So while a worker holds rows (claimed, not
yet recorded) it pushes their leases to ``now + lease_s`` every third of ``lease_s``, in one
short statement per 500 rows. A worker that dies stops renewing, and its rows come back one
lease after the last renewal, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.clock import Clock
from keyfob.notifications.models import notifications
from keyfob.notifications.queue import Delivery, chunks, pending
from keyfob.store.engine import Database
from keyfob.store.one_trip import run_in_one_trip
from keyfob.store.queries import one_of

log = logging.getLogger("keyfob.delivery")

_RENEW = (
    update(notifications)
    .where(
        one_of(notifications.c.id, "ids"),
        notifications.c.lease_owner == bindparam("owner"),
        pending(),
    )
    .values(lease_until=bindparam("until"))
)
"""Only rows this owner still holds: a row already recorded (or taken over) is left alone."""


async def renew(conn: AsyncConnection, *, owner: str, ids: list[str], until: datetime) -> None:
    for chunk in chunks(ids):
        await conn.execute(_RENEW, {"ids": chunk, "owner": owner, "until": until})


class LeaseKeeper:
    """The rows one worker holds, and the loop that renews their leases."""

    def __init__(self, database: Database, *, owner: str, lease_s: float, clock: Clock) -> None:
        self._database = database
        self._owner = owner
        self._lease = timedelta(seconds=lease_s)
        self._every = lease_s / 3
        self._clock = clock
        self._held: dict[str, list[str]] = {}
        self._stopped = asyncio.Event()

    def hold(self, delivery: Delivery) -> None:
        self._held[delivery.rows[0].id] = [row.id for row in delivery.rows]

    def release(self, delivery: Delivery) -> None:
        self._held.pop(delivery.rows[0].id, None)

    async def renew(self) -> None:
        """Push every held row's lease to ``now + lease_s``."""
        ids = [row_id for rows in self._held.values() for row_id in rows]
        if ids:
            until = self._clock() + self._lease
            await run_in_one_trip(
                self._database,
                partial(renew, owner=self._owner, ids=ids, until=until),
                synced=False,  # lost in a power cut: nothing held survives one anyway
            )

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._every)
            if self._stopped.is_set():
                return
            try:
                await self.renew()
            except Exception:
                log.exception("renewing delivery leases failed; retrying at the next tick")
