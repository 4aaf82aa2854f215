"""Table upkeep as a role: every long-running process on PostgreSQL takes part.

The API, the dispatchers and the delivery workers all start it, and an advisory lock lets one
of them work at a time, so a deployment keeps its tables whichever of its processes run
(``store.upkeep``). On SQLite there is nothing to do: its deleted rows' pages are reused as
they come free, and its planner needs no statistics for keyfob's indexed look-ups.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from keyfob.runtime.context import AppContext
from keyfob.runtime.tables import metadata
from keyfob.store.upkeep import TableUpkeep


@asynccontextmanager
async def table_upkeep(ctx: AppContext) -> AsyncIterator[TableUpkeep | None]:
    settings = ctx.settings
    if ctx.database.sqlite or settings.db_upkeep == "off":
        yield None
        return
    upkeep = TableUpkeep(
        ctx.database,
        [table.name for table in metadata.sorted_tables],
        mode=settings.db_upkeep,
        every_s=settings.db_upkeep_every_s,
    )
    task = asyncio.create_task(upkeep.run(), name="table-upkeep")
    try:
        yield upkeep
    finally:
        upkeep.stop()
        await task
