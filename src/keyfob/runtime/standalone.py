"""Running roles alone, outside ``keyfob serve``: the scaled-out deployment.

``keyfob worker`` and ``keyfob dispatcher`` share the database with the API processes and
need nothing else from them; run as many of each as the load needs (PostgreSQL). They stop
gracefully on SIGINT/SIGTERM. With ``metrics=(host, port)`` the process serves its own
Prometheus counters (what it delivered, finished, woke) on ``http://host:port/metrics``, from
a small HTTP server thread of ``prometheus_client``: no API runs here to serve them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

from prometheus_client import start_http_server

from keyfob.config import Settings
from keyfob.runtime.context import build_context
from keyfob.runtime.roles import Role, hosting
from keyfob.store import migrate


async def run_roles(
    settings: Settings, roles: Sequence[Role], *, metrics: tuple[str, int] | None = None
) -> None:
    ctx = build_context(settings)  # its acceptor is never started: no API in this process
    server = None
    if metrics is not None:
        host, port = metrics
        server, _ = start_http_server(port, addr=host, registry=ctx.metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await migrate.upgrade(ctx.database)
        async with hosting(ctx, roles):
            await stop.wait()
    finally:
        if server is not None:
            await asyncio.to_thread(server.shutdown)
        await ctx.database.dispose()
