"""A real local WebSocket receiver for the WebSocket callback tests.

It records every frame its connections read, in order, with the connection it came on. A
connection listed in ``silent_after`` stops reading from the network after that many frames
(the receiver hangs or its network drops mid-batch): what it had already read is still
recorded, what was written after is never read; the connection ends when keyfob gives it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@dataclass
class WsReceiver:
    url: str = ""
    frames: list[tuple[int, Any]] = field(default_factory=list)
    """(connection number from 1, parsed frame) in the order read."""
    silent_after: dict[int, int] = field(default_factory=dict)
    connections: int = 0
    ended: list[int] = field(default_factory=list)
    """The connections that ended, by number."""
    paths: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, done: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``done()`` holds, looked at whenever a frame is read or a connection ends."""
        async with asyncio.timeout(timeout):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    async def read(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` frames have been read in all."""
        async with asyncio.timeout(timeout):
            while len(self.frames) < count:
                self.changed.clear()
                await self.changed.wait()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message read, arrays flattened, in order."""
        found: list[dict[str, Any]] = []
        for _, frame in self.frames:
            found.extend(frame if isinstance(frame, list) else [frame])
        return found


@asynccontextmanager
async def ws_receiver(**silent_after: int) -> AsyncIterator[WsReceiver]:
    found = WsReceiver(silent_after={int(k.removeprefix("c")): v for k, v in silent_after.items()})

    async def handle(connection: ServerConnection) -> None:
        found.connections += 1
        number = found.connections
        found.paths.append(connection.request.path if connection.request else "")
        read = 0
        limit = found.silent_after.get(number)
        if limit == 0:
            connection.transport.pause_reading()
        with contextlib.suppress(ConnectionClosed):
            async for frame in connection:
                found.frames.append((number, json.loads(frame)))
                found.changed.set()
                read += 1
                if limit is not None and read == limit:
                    connection.transport.pause_reading()
        found.ended.append(number)
        found.changed.set()

    # max_queue=None: the library never pauses or resumes reading on its own.
    async with serve(
        handle, "127.0.0.1", 0, max_queue=None, compression=None, close_timeout=0.2
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        found.url = f"ws://127.0.0.1:{port}/feed"
        yield found
