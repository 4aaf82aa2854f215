"""The campaign runner: turns a campaign's targets into ordinary remotes, at its pace.

Each turn (``run_once``), for every campaign due (``Scheduled`` or ``Running``, its start
passed), in this order:

1. abort: once ``abort_min_finished`` of its remotes are Done, more than ``abort_percent`` of
   them Failed ends the campaign ``Aborted`` and drops the targets not started;
2. start: as many targets as the rate (and ramp) allows by now, in order, each POSTed through
   the acceptor exactly as a partner's POST remote (the same checks, the same 202, the same
   notifications) with the Idempotency-Key ``campaign-<cid>-<vid>``. A target the acceptor
   refuses (the car left the fleet, the callback was paused...) is marked ``refused`` with the
   error; it does not stop the others;
3. complete: no target left pending ends the campaign ``Completed`` (its remotes run on).

The database is the queue: a target is marked started only after its remote is committed, and
a crash in between replays the same key, so no vehicle gets the campaign's remote twice.
Campaigns are few and turns are slow (a second), so the runner reads them with plain queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from keyfob.errors import KeyfobError
from keyfob.kit.clock import Clock
from keyfob.remotes.accept import Acceptor
from keyfob.remotes.accept_fleet import AcceptRequest
from keyfob.remotes.control import campaigns as service
from keyfob.remotes.control.campaign_models import campaign_targets, campaigns
from keyfob.remotes.models import remotes
from keyfob.remotes.staging import Posted
from keyfob.store.engine import Database
from keyfob.vocabulary import DoneStatus

log = logging.getLogger("keyfob.campaigns")
PER_TURN = 500
"""Targets started at most per campaign and turn (a turn is about a second)."""


class CampaignRunner:
    def __init__(
        self, database: Database, acceptor: Acceptor, *, clock: Clock, poll_s: float = 1.0
    ) -> None:
        self.database = database
        self.acceptor = acceptor
        self.clock = clock
        self.poll_s = poll_s
        self._stopping = asyncio.Event()
        self.started = 0

    async def run_once(self) -> int:
        """One turn over every due campaign; returns how many remotes it started."""
        now = self.clock()
        async with self.database.read() as conn:
            rows = (
                await conn.execute(
                    select(campaigns).where(
                        campaigns.c.status.in_(service.ACTIVE), campaigns.c.starts_at <= now
                    )
                )
            ).all()
        started = 0
        for row in rows:
            started += await self._turn(row, now)
        self.started += started
        return started

    async def _turn(self, row: Any, now: datetime) -> int:
        if await self._aborted(row, now):
            return 0
        async with self.database.transaction() as conn:
            if row.status == "Scheduled":
                await conn.execute(
                    update(campaigns)
                    .where(campaigns.c.id == row.id, campaigns.c.status == "Scheduled")
                    .values(status="Running", updated_at=now)
                )
            done = (
                await conn.execute(
                    select(func.count()).where(
                        campaign_targets.c.campaign_id == row.id,
                        campaign_targets.c.state != "pending",
                        campaign_targets.c.state != "cancelled",
                    )
                )
            ).scalar_one()
            room = service.started_by(service.campaign_from_row(row), now) - int(done)
            pending = (
                (
                    await conn.execute(
                        select(campaign_targets.c.vehicle_id)
                        .where(
                            campaign_targets.c.campaign_id == row.id,
                            campaign_targets.c.state == "pending",
                        )
                        .order_by(campaign_targets.c.position)
                        .limit(max(0, min(room, PER_TURN)) + 1)
                    )
                )
                .scalars()
                .all()
            )
        if not pending:
            await self._finish(row.id, "Completed", None, now)
            return 0
        batch = list(pending[: max(0, min(room, PER_TURN))])
        if not batch:
            return 0
        answers = await asyncio.gather(
            *(self._start(row, vehicle_id) for vehicle_id in batch), return_exceptions=True
        )
        async with self.database.transaction() as conn:
            for vehicle_id, answer in zip(batch, answers, strict=True):
                await conn.execute(
                    update(campaign_targets)
                    .where(
                        campaign_targets.c.campaign_id == row.id,
                        campaign_targets.c.vehicle_id == vehicle_id,
                        campaign_targets.c.state == "pending",
                    )
                    .values(**_outcome(answer, now))
                )
        if len(pending) == len(batch):
            await self._finish(row.id, "Completed", None, now)
        return sum(1 for answer in answers if isinstance(answer, Posted))

    async def _start(self, row: Any, vehicle_id: str) -> Posted:
        return await self.acceptor.accept(
            AcceptRequest(
                partner_id=row.partner_id,
                fleet_id=row.fleet_id,
                vehicle_id=vehicle_id,
                callback_id=row.callback_id,
                data=row.body,
                idempotency_key=f"campaign-{row.id}-{vehicle_id}",
            )
        )

    async def _aborted(self, row: Any, now: datetime) -> bool:
        if row.abort_percent is None:
            return False
        async with self.database.read() as conn:
            finished, failed = (
                await conn.execute(
                    select(
                        func.count(),
                        func.count().filter(remotes.c.status == DoneStatus.FAILED.value),
                    )
                    .select_from(campaign_targets)
                    .join(remotes, remotes.c.id == campaign_targets.c.remote_id)
                    .where(campaign_targets.c.campaign_id == row.id, remotes.c.phase == "done")
                )
            ).one()
        finished, failed = int(finished), int(failed)
        if finished < row.abort_min_finished or failed * 100 <= row.abort_percent * finished:
            return False
        share = round(failed * 100 / finished)
        reason = (
            f"{failed} of {finished} finished remotes failed ({share} %), "
            f"more than the threshold of {row.abort_percent} %"
        )
        await self._finish(row.id, "Aborted", reason, now)
        return True

    async def _finish(
        self, campaign_id: str, status: str, reason: str | None, now: datetime
    ) -> None:
        async with self.database.transaction() as conn:
            await service.finish(conn, campaign_id, status=status, reason=reason, now=now)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("a campaign turn failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_s)


def _outcome(answer: Posted | BaseException, now: datetime) -> dict[str, Any]:
    if isinstance(answer, Posted):
        return {"state": "started", "remote_id": answer.remote_id, "started_at": now}
    if isinstance(answer, KeyfobError):
        return {"state": "refused", "error": f"{answer.error.code}: {answer.message}"[:300]}
    raise answer  # the database or a bug: the target stays pending for the next turn
