"""Gauges read from the database when ``/metrics`` is scraped, shared by every process.

The numbers are the same whichever API process answers (they are the database's): vehicles by
presence, and the notification outbox (pending deliveries, and how long the oldest due one
has waited). Two cheap aggregate queries, run at most once per ``ttl`` seconds however often
Prometheus (or several of them) scrape; nothing on the request path touches them.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import func, select

from keyfob.kit.clock import Clock
from keyfob.notifications import queue
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicle_states

PRESENCES = ("online", "asleep", "offline", "unknown")


class ScrapeGauges:
    def __init__(
        self,
        database: Database,
        registry: CollectorRegistry,
        *,
        clock: Clock,
        ttl: float = 5.0,
    ) -> None:
        self.database = database
        self.clock = clock
        self.ttl = ttl
        self._read_at: float | None = None
        self.vehicles = Gauge(
            "keyfob_vehicles",
            "Registered vehicles by last known presence (online, asleep, offline, unknown).",
            ["presence"],
            registry=registry,
        )
        for presence in PRESENCES:
            self.vehicles.labels(presence=presence)
        self.outbox_depth: int = 0
        self.outbox_age: float = 0.0

    async def refresh(self) -> None:
        """Read the database again unless the last read is under ``ttl`` seconds old."""
        started = time.monotonic()
        if self._read_at is not None and started - self._read_at < self.ttl:
            return
        counts = select(vehicle_states.c.presence, func.count()).group_by(vehicle_states.c.presence)
        async with self.database.read() as conn:
            by_presence = {row[0]: int(row[1]) for row in await conn.execute(counts)}
            self.outbox_depth, self.outbox_age = await queue.queue_stats(conn, now=self.clock())
        for presence in {*PRESENCES, *by_presence}:
            self.vehicles.labels(presence=presence).set(by_presence.get(presence, 0))
        self._read_at = started
