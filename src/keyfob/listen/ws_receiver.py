"""``keyfob listen --ws``: a WebSocket receiver that prints each ``Message`` keyfob sends it.

A user-face callback may deliver over a WebSocket that keyfob dials (``callback.websocket``):
point its target at ``ws://127.0.0.1:8787/`` and this prints each frame as the webhook receiver
prints a body, one line per message of a batch. It accepts any path and any number of
connections, and answers keyfob's pings (the library does). Frames carry no signature, so there
is nothing for ``--secret`` to check.

    12:00:01  connected: 127.0.0.1 /
    12:00:01  9f3c…  -  Doors  Pending/Accepted
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from keyfob.kit.clock import Clock, utcnow
from keyfob.listen.receiver import describe


def _stamp(clock: Clock) -> str:
    return clock().astimezone().strftime("%H:%M:%S")


def handler(
    say: Callable[[str], None], *, raw: bool = False, clock: Clock = utcnow
) -> Callable[[ServerConnection], Awaitable[None]]:
    async def receive(connection: ServerConnection) -> None:
        peer = connection.remote_address[0] if connection.remote_address else "?"
        path = connection.request.path if connection.request else "/"
        say(f"{_stamp(clock)}  connected: {peer} {path}")
        try:
            async for frame in connection:
                body = frame.encode() if isinstance(frame, str) else frame
                if raw:
                    say(body.decode("utf-8", errors="replace"))
                    continue
                for line in describe(body):
                    say(f"{_stamp(clock)}  {line}")
        except ConnectionClosed:
            pass
        say(f"{_stamp(clock)}  disconnected: {peer}")

    return receive


async def start(host: str, port: int, say: Callable[[str], None], *, raw: bool = False) -> Server:
    """The receiver, listening; close it with ``close()`` and ``wait_closed()``."""
    return await serve(handler(say, raw=raw), host, port)


async def serve_forever(host: str, port: int, say: Callable[[str], None], *, raw: bool) -> None:
    server = await start(host, port, say, raw=raw)
    say(f"listening on ws://{host}:{port}/ (WebSocket frames; not signed)")
    async with server:
        await asyncio.get_running_loop().create_future()  # until interrupted


def run(host: str, port: int, say: Callable[[str], None], *, raw: bool = False) -> None:
    asyncio.run(serve_forever(host, port, say, raw=raw))
