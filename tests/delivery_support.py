"""A real local webhook receiver and a delivery worker wired to a test app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import Clock
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.store.engine import Database


@dataclass
class Receiver:
    """Records every request; answers with the status ``answer`` returns (200 by default)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    answer: Callable[[int], int] = lambda _n: 200

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for b in self.bodies for e in b["events"]]

    def statuses_of(self, remote_id: str) -> list[str]:
        return [e["eventStatus"]["status"] for e in self.events if e["remoteActionId"] == remote_id]


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        found.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "raw": raw,
                "json": json.loads(raw),
            }
        )
        return web.Response(status=found.answer(len(found.requests)), text="ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


@asynccontextmanager
async def worker(db: Database, clock: Clock, **options: Any) -> AsyncIterator[DeliveryWorker]:
    sender = WebhookSender(TargetPolicy(allow_private=True), timeout=options.pop("timeout", 2.0))
    found = DeliveryWorker(db, sender, clock=clock, options=WorkerOptions(**options))
    try:
        yield found
    finally:
        await sender.close()


async def drain(work: DeliveryWorker, rounds: int = 20) -> int:
    """Run cycles until nothing is due; returns POSTs made."""
    total = 0
    for _ in range(rounds):
        made = await work.run_once()
        total += made
        if made == 0:
            return total
        await asyncio.sleep(0)
    return total
