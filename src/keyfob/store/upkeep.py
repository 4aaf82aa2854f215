"""Vacuum and fresh statistics for keyfob's tables, on a PostgreSQL server that gives them none.

keyfob's busiest tables are queues. Every remote is updated two or three times on its way to
Done, every notification is leased and then recorded, every status report rewrites a vehicle's
state, and each update leaves the row's old version behind. PostgreSQL's autovacuum clears
those dead versions and, through ``ANALYZE``, keeps the planner's statistics in step with the
tables. On a server that runs with ``autovacuum = off``, neither happens, and two things go
wrong:

* dead versions pile up (after a minute at 300 remotes/s, two dead remotes for every live one)
  and every scan of a table or an index walks through them;
* a statement keeps the plan it got while its table was empty. asyncpg prepares each statement
  once per connection and PostgreSQL settles on one generic plan for it after a few runs; over
  an empty table the cheapest plan reads the whole table, and only new statistics make
  PostgreSQL plan again. In ``bench/e2e.py``, scaled out, the dispatcher's look-up of remotes
  by command id read every remote at each batch of cars' answers, and PostgreSQL's backends
  took half of the machine at 300 remotes/s.

So ``TableUpkeep`` applies autovacuum's own rule where the server does not. Once in the
server's ``autovacuum_naptime`` (a minute), as autovacuum would, it reads each table's counts
of dead, changed and inserted rows since the last vacuum or analysis
(``pg_stat_user_tables``) and runs ``VACUUM``, ``ANALYZE`` or both on the tables past the
server's thresholds (``autovacuum_vacuum_threshold`` + ``autovacuum_vacuum_scale_factor``
times rows, and the analyze and insert pairs likewise), at autovacuum's pace
(``autovacuum_vacuum_cost_delay``, ``autovacuum_vacuum_cost_limit``). In between, every
``every_s``, it looks only for tables that have rows and no statistics yet, and analyses
those at once: that is the stale plan above, and the first statistics are what ends it. Doing
more, more often, costs more than it gives. A full round every 5 s took the p99 of a remote at
300/s from about 42 to about 75 ms in ``bench/e2e.py``: each vacuum and analysis is a burst of
CPU and disk that the remotes under way feel, and each analysis makes every session plan its
statements again. ``VACUUM`` without ``FULL`` blocks no reader and no writer. One process of a
deployment runs a round at a time (a session advisory lock taken for the round); the others
find the counts reset. ``db_upkeep = "auto"`` does all this only while the server's
autovacuum is off, ``"on"`` whatever the server does, ``"off"`` never.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from keyfob.store.engine import Database

Mode = Literal["auto", "on", "off"]

LOCK_KEY = 0x6B6579666F627570  # "keyfobup": one upkeep round at a time per database
DONE_KEPT = 100
log = logging.getLogger("keyfob.store.upkeep")

_SETTINGS = (
    "autovacuum",
    "track_counts",
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_insert_scale_factor",
    "autovacuum_analyze_threshold",
    "autovacuum_analyze_scale_factor",
    "autovacuum_naptime",
    "autovacuum_vacuum_cost_delay",
    "autovacuum_vacuum_cost_limit",
    "vacuum_cost_delay",
    "vacuum_cost_limit",
)
_READ_SETTINGS = "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])"
_READ_COUNTS = """
SELECT s.relname, c.reltuples, s.n_dead_tup, s.n_mod_since_analyze, s.n_ins_since_vacuum
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])
ORDER BY s.relname
"""


@dataclass(frozen=True)
class Policy:
    """Autovacuum's thresholds: a table is due past ``threshold + scale * rows``."""

    vacuum_threshold: float = 50
    vacuum_scale: float = 0.2
    insert_threshold: float = 1000
    """-1 turns vacuums for inserts off, as on the server."""
    insert_scale: float = 0.2
    analyze_threshold: float = 50
    analyze_scale: float = 0.1
    cost_delay_ms: float = 2
    """Autovacuum's pace: a pause this long each time ``cost_limit`` units of work are done."""
    cost_limit: int = 200
    naptime_s: float = 60
    """Autovacuum looks at a database's tables once in this time."""

    @classmethod
    def of(cls, settings: dict[str, str]) -> Policy:
        """The server's own values, where it has them (PostgreSQL's defaults otherwise)."""
        default = cls()

        def value(name: str, fallback: float) -> float:
            return float(settings.get(f"autovacuum_{name}", fallback))

        def pace(name: str, fallback: float, plain: float) -> float:
            """Autovacuum's own, or the plain VACUUM's where autovacuum's says -1."""
            own = value(name, fallback)
            return own if own >= 0 else float(settings.get(name, plain))

        return cls(
            vacuum_threshold=value("vacuum_threshold", default.vacuum_threshold),
            vacuum_scale=value("vacuum_scale_factor", default.vacuum_scale),
            insert_threshold=value("vacuum_insert_threshold", default.insert_threshold),
            insert_scale=value("vacuum_insert_scale_factor", default.insert_scale),
            analyze_threshold=value("analyze_threshold", default.analyze_threshold),
            analyze_scale=value("analyze_scale_factor", default.analyze_scale),
            cost_delay_ms=pace("vacuum_cost_delay", default.cost_delay_ms, 0),
            cost_limit=int(pace("vacuum_cost_limit", -1, default.cost_limit)),
            naptime_s=value("naptime", default.naptime_s),
        )


@dataclass(frozen=True)
class Counts:
    """One table's row counts, as ``pg_stat_user_tables`` and ``pg_class`` give them."""

    table: str
    rows: float
    """``reltuples``: -1 until the table was first vacuumed or analysed."""
    dead: int
    changed: int
    """Rows inserted, updated or deleted since the last analysis."""
    inserted: int
    """Rows inserted since the last vacuum."""


def command_for(counts: Counts, policy: Policy) -> str | None:
    """What autovacuum would run on this table now, or None."""
    rows = max(counts.rows, 0.0)
    vacuum = counts.dead > policy.vacuum_threshold + policy.vacuum_scale * rows or (
        policy.insert_threshold >= 0
        and counts.inserted > policy.insert_threshold + policy.insert_scale * rows
    )
    analyze = counts.changed > policy.analyze_threshold + policy.analyze_scale * rows
    name = _quoted(counts.table)
    if vacuum:
        return f"VACUUM (ANALYZE) {name}" if analyze else f"VACUUM {name}"
    return f"ANALYZE {name}" if analyze else None


def wanted(mode: Mode, autovacuum: bool) -> bool:
    """Whether keyfob looks after its tables itself."""
    return mode == "on" or (mode == "auto" and not autovacuum)


class TableUpkeep:
    """Rounds of autovacuum's rule over ``tables`` while it is ``wanted``: over every table once
    in the server's ``autovacuum_naptime``, and every ``every_s`` over those that have no
    statistics yet."""

    def __init__(
        self,
        database: Database,
        tables: Sequence[str],
        *,
        mode: Mode,
        every_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert not database.sqlite
        self.database = database
        self.tables = list(tables)
        self.mode = mode
        self.every_s = every_s
        self.rounds = 0
        self.done: list[str] = []
        """The last ``DONE_KEPT`` commands run, in order."""
        self._stop = asyncio.Event()
        self._monotonic = monotonic

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Decide once whether the server needs it, then look every ``every_s``."""
        policy = await self._policy()
        while policy is None and not await self._stopped_within(self.every_s):
            policy = await self._policy()  # the server was unreachable: ask again
        if not policy:
            return
        every_table_at = self._monotonic()  # what was left before this process started
        while not await self._stopped_within(self.every_s):
            now = self._monotonic()
            every_table = now >= every_table_at
            try:
                await self.round(policy, every_table=every_table)
            except Exception as error:  # a lost round: the next one tries again
                log.warning("table upkeep round failed: %s", error)
                continue
            if every_table:
                every_table_at = now + policy.naptime_s

    async def round(self, policy: Policy, *, every_table: bool = True) -> list[str]:
        """One round, if no other process is in one: the commands it ran. Without
        ``every_table``, only over tables that have no statistics yet."""
        ran: list[str] = []
        due: list[str] = []
        async with _session(self.database) as driver:
            if not await driver.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                return ran
            try:
                tables = [Counts(*row) for row in await driver.fetch(_READ_COUNTS, self.tables)]
                looked_at = [t for t in tables if every_table or t.rows < 0]
                due = [c for t in looked_at if (c := command_for(t, policy)) is not None]
                if due:
                    await driver.execute(
                        f"SET vacuum_cost_delay = '{policy.cost_delay_ms}ms'; "
                        f"SET vacuum_cost_limit = {policy.cost_limit}"
                    )
                for command in due:
                    await driver.execute(command)
                    ran.append(command)
            finally:
                reset = "RESET vacuum_cost_delay; RESET vacuum_cost_limit; " if due else ""
                await driver.execute(f"{reset}SELECT pg_advisory_unlock({LOCK_KEY})")
        self.rounds += 1
        self.done = [*self.done, *ran][-DONE_KEPT:]
        if ran:
            log.debug("table upkeep: %s", "; ".join(ran))
        return ran

    async def _policy(self) -> Policy | Literal[False] | None:
        """The server's thresholds when keyfob should keep its tables, False when it should
        not, None when the server could not be asked."""
        try:
            async with _session(self.database) as driver:
                rows = await driver.fetch(_READ_SETTINGS, list(_SETTINGS))
        except Exception as error:  # asked again after every_s
            log.debug("table upkeep could not read the server's settings: %s", error)
            return None
        settings = {name: setting for name, setting in rows}
        if not wanted(self.mode, settings.get("autovacuum") == "on"):
            return False
        if settings.get("track_counts") != "on":
            log.warning(
                "track_counts is off on the PostgreSQL server: keyfob cannot tell when its "
                "tables need a vacuum, and leaves them as they are"
            )
            return False
        if self.mode == "auto":
            log.info(
                "autovacuum is off on the PostgreSQL server: keyfob vacuums and analyses its "
                'own tables by autovacuum\'s rule (db_upkeep = "off" leaves them alone)'
            )
        return Policy.of(settings)

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


@contextlib.asynccontextmanager
async def _session(database: Database) -> AsyncIterator[Any]:
    """asyncpg's connection, pooled, in autocommit: ``VACUUM`` runs in no transaction."""
    async with database.autocommit() as conn:
        yield (await conn.get_raw_connection()).driver_connection


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
