"""Running one role alone, outside ``keyfob serve``: the scaled-out deployment.

``keyfob worker`` and ``keyfob dispatcher`` share the database with the API processes and
need nothing else from them; run as many of each as the load needs (PostgreSQL). They stop
gracefully on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack

from keyfob import migrate
from keyfob.api.app import target_policy
from keyfob.api.context import AppContext
from keyfob.config import Settings
from keyfob.db import Database
from keyfob.kit.clock import utcnow
from keyfob.remotes.accept import Acceptor

RoleFactory = Callable[[AppContext], AbstractAsyncContextManager[object]]


async def run_roles(settings: Settings, roles: list[RoleFactory]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    database = Database(settings.db, pool_size=settings.db_pool_size)
    ctx = AppContext(
        settings=settings,
        database=database,
        clock=utcnow,
        target_policy=target_policy(settings),
        acceptor=Acceptor(database, clock=utcnow),  # not started: no API in this process
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await migrate.upgrade(database)
        async with AsyncExitStack() as stack:
            for role in roles:
                await stack.enter_async_context(role(ctx))
            await stop.wait()
    finally:
        await database.dispose()
