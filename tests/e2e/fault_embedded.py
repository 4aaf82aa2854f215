"""The embedded shape under a crash: one ``keyfob serve`` on a SQLite file (in-memory link,
cars inside the process), killed with SIGKILL while remotes flow and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fault_bar import Bar, judge, settled
from fault_flow import Flow, ResultSpy, demo_flow
from fault_processes import COMMAND_TIMEOUT_S, Process, base_env, free_port, healthy
from sqlalchemy import select

from keyfob.kit.clock import utcnow
from keyfob.remotes.models import remotes
from keyfob.store.engine import Database


@dataclass
class Embedded:
    """``keyfob serve`` on a SQLite file that outlives the process; its cars live inside it."""

    db: Database
    serve: Process
    base: str
    flow: Flow

    async def kill_during_flow(self, *, rate: float = 15.0, total: float = 9.0) -> Bar:
        """SIGKILL ``serve`` a third of the way into the flow, start it again on the same file.

        The cars die with the process, so a command in flight at the kill is lost with its car
        (a time-out is the truth then) and a re-run cannot be seen; what is judged: nothing
        stuck, no double Done, and no time-out among the remotes posted after the restart.
        """
        flow = asyncio.create_task(self.flow.run(total, rate))
        await asyncio.sleep(total / 3)
        self.serve.kill()
        self.serve.start()
        await healthy(self.base, self.serve)
        restarted = utcnow()
        await flow
        accepted = set(self.flow.accepted)
        await settled(self.db, accepted, timeout=4 * COMMAND_TIMEOUT_S + 20)
        bar = await judge(self.db, accepted, ResultSpy.nothing_seen())
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(remotes.c.id).where(
                        remotes.c.created_at > restarted,
                        remotes.c.failure_cause == "VehicleConnectionTimeout",
                    )
                )
            ).all()
        bar.acted_but_timed_out = [f"{r.id} (posted after the restart)" for r in rows]
        print(f"{len(accepted)} remotes; answers {dict(self.flow.answers)}; {dict(bar.outcomes)}")
        return bar


@contextlib.asynccontextmanager
async def embedded(workdir: Path, cars: int = 20) -> AsyncIterator[Embedded]:
    path = workdir / "keyfob.db"
    port = free_port()
    serve = Process(
        "serve",
        [
            "serve",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{path}",
            "--vehicles",
            str(cars),
            "--credentials-file",
            str(workdir / "demo.json"),
        ],
        base_env(),
        workdir,
    )
    serve.start()
    db = Database(f"sqlite:///{path}")
    try:
        base = f"http://127.0.0.1:{port}"
        await healthy(base, serve)
        flow = await demo_flow(base, workdir / "demo.json")
        yield Embedded(db, serve, base, flow)
    except BaseException:
        print(f"--- serve log ---\n{serve.tail()}")
        raise
    finally:
        serve.stop()
        await db.dispose()
