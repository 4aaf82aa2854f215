"""Fault tests' bar: what the platform did with the accepted remotes, judged against the
results the cars gave.

The bar is the one a partner cares about: no remote stuck, no remote with two Done events, no
command run twice, no result of an unknown command (a remote sent twice under two ids), and no
remote reported ``VehicleConnectionTimeout`` although its car's result was on the broker in time
for the platform to take it (before the time-out, or within one command deadline after the
fault healed).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from fault_flow import ResultSpy
from fault_processes import COMMAND_TIMEOUT_S
from sqlalchemy import func, select

from keyfob.remotes.models import remote_events, remotes
from keyfob.store.engine import Database

# A result that reached the broker this long before the deadline must be taken: less is a race
# the platform may lose honestly (the deadline fired while the message was on its way).
MARGIN = timedelta(seconds=0.5)


@dataclass
class Bar:
    """What the platform did with the accepted remotes, judged against the results seen."""

    stuck: list[str]
    double_done: list[str]
    run_twice: list[str]
    unknown_results: list[str]
    acted_but_timed_out: list[str]
    outcomes: Counter[str]
    late_time_outs: int  # time-outs whose result came after the deadline (allowed)

    def check(self) -> None:
        assert self.stuck == [], f"stuck remotes {self.stuck}; {self}"
        assert self.double_done == [], f"two Done events: {self.double_done}; {self}"
        assert self.run_twice == [], f"commands run twice: {self.run_twice}; {self}"
        assert self.unknown_results == [], f"results of unknown commands; {self}"
        assert self.acted_but_timed_out == [], f"car acted, reported time-out; {self}"


async def settled(db: Database, remote_ids: set[str], timeout: float) -> None:
    """Until every remote in ``remote_ids`` is done (or ``timeout`` passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with db.read() as conn:
            active = (
                await conn.execute(
                    select(func.count())
                    .select_from(remotes)
                    .where(remotes.c.id.in_(remote_ids), remotes.c.phase != "done")
                )
            ).scalar_one()
        if active == 0:
            return
        await asyncio.sleep(0.2)


async def judge(
    db: Database,
    accepted: set[str],
    spy: ResultSpy,
    answered: set[str] | None = None,
    healed: datetime | None = None,
) -> Bar:
    """``answered``: the command ids the cars themselves answered, when the test can see the
    cars; then a time-out for a command the car answered fails the bar even if its result
    never reached the broker (without it, only results seen on the broker tell). A result
    that reached the broker within one command deadline after ``healed`` (the end of the
    fault) must have been taken too: the platform's deadline may not run out on a link that
    was down."""
    deadline = timedelta(seconds=COMMAND_TIMEOUT_S)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    remotes.c.id,
                    remotes.c.phase,
                    remotes.c.status,
                    remotes.c.failure_cause,
                    remotes.c.command_id,
                    remotes.c.deadline_at,
                )
            )
        ).all()
        dones = (
            await conn.execute(
                select(remote_events.c.remote_id, remote_events.c.created_at).where(
                    remote_events.c.type == "Done"
                )
            )
        ).all()
    done_at: dict[str, datetime] = {}
    done_count: Counter[str] = Counter()
    for remote_id, created in dones:
        done_count[remote_id] += 1
        done_at.setdefault(remote_id, created)
    by_command = {r.command_id: r for r in rows if r.command_id}
    acted, late = [], 0
    for row in rows:
        if (row.status, row.failure_cause) != ("Failed", "VehicleConnectionTimeout"):
            continue
        seen = spy.first.get(row.command_id or "")
        ended = done_at.get(row.id)
        if seen is not None and ended is not None and seen <= ended - MARGIN:
            acted.append(f"{row.id} (result on the broker {ended - seen} before the time-out)")
        elif answered is not None and row.command_id in answered and seen is None:
            acted.append(f"{row.id} (the car answered; its result never reached the broker)")
        elif seen is not None and healed is not None and seen <= healed + deadline:
            acted.append(f"{row.id} (result on the broker {seen - healed} after the heal)")
        elif seen is not None:
            late += 1
    return Bar(
        stuck=sorted(accepted - {r.id for r in rows if r.phase == "done"}),
        double_done=sorted(r for r, n in done_count.items() if n > 1),
        run_twice=sorted(c for c, ats in spy.runs.items() if len(ats) > 1),
        unknown_results=sorted(set(spy.runs) - set(by_command)),
        acted_but_timed_out=acted,
        outcomes=Counter(f"{r.status}/{r.failure_cause or '-'}" for r in rows),
        late_time_outs=late,
    )
