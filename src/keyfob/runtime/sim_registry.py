"""The embedded simulator follows the vehicle registry while ``keyfob serve`` runs.

A vehicle added with ``keyfob admin vehicle add`` (another process) is simulated within
``sim_registry_poll_s`` seconds, and one removed stops being simulated, with no restart. Each
round asks the database one cheap question (how many simulated vehicles, and the newest one's
creation time); only when the answer changes does it read the list and add or retire the
difference. Nothing of this runs on the path of a remote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from keyfob.sim.fleet import Fleet, VehicleSpec
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicles
from keyfob.vehicles.service import all_vehicles
from keyfob.vocabulary import Motorization

log = logging.getLogger(__name__)
Mark = tuple[int, datetime | None]


class RegistryFollower:
    """Keeps a running ``Fleet`` in step with the registry's simulated vehicles."""

    def __init__(self, database: Database, started: Iterable[VehicleSpec], *, every: float) -> None:
        self._database = database
        self._known = {spec.vin for spec in started}
        self._every = every
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def follow(self, fleet: Fleet) -> None:
        """Start following for ``fleet`` (its first vehicles are those given at creation)."""
        self._task = asyncio.create_task(self._run(fleet), name="simulator-registry")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, fleet: Fleet) -> None:
        seen: Mark | None = None  # the first round compares the whole list
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._every)
            if self._stop.is_set():
                return
            try:
                mark = await self._mark()
                if mark != seen:
                    await self._catch_up(fleet)
                    seen = mark
            except Exception as exc:  # an outage: try again next round
                log.warning("simulator: cannot read the vehicle registry (%s)", exc)

    async def _mark(self) -> Mark:
        query = select(func.count(), func.max(vehicles.c.created_at)).where(
            vehicles.c.simulated.is_(True)
        )
        async with self._database.read() as conn:
            count, newest = (await conn.execute(query)).one()
        return int(count), newest

    async def _catch_up(self, fleet: Fleet) -> None:
        async with self._database.read() as conn:
            found = [v for v in await all_vehicles(conn) if v.simulated]
        wanted = {v.vin: v for v in found}
        for vin in sorted(set(wanted) - self._known):
            await fleet.add(VehicleSpec(vin, Motorization(wanted[vin].motorization)))
            self._known.add(vin)
            log.info("simulator: now simulating %s, added to the registry", vin)
        for vin in sorted(self._known - set(wanted)):
            if vin in fleet.vins:
                await fleet.remove(vin)
            self._known.discard(vin)
            log.info("simulator: no longer simulating %s, removed from the registry", vin)
