"""``keyfob listen --ws``: a WebSocket receiver that prints each ``Message`` keyfob sends it.

A user-face callback may deliver over a WebSocket that keyfob dials (``callback.websocket``):
point its target at ``ws://127.0.0.1:8787/`` and this prints each frame as the webhook receiver
prints a body, one line per message of a batch. It accepts any path and any number of
connections, and answers keyfob's pings (the library does). Frames carry no signature; the
connection does: with ``--secret`` (any one of several verifies) the opening handshake must carry
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` over
``{id}.{timestamp}.{keyfob-callback-id}``, and one without a valid signature is answered 401.

    12:00:01  connected: 127.0.0.1 /
    12:00:01  9f3c…  -  Doors  Pending/Accepted
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from keyfob.kit.clock import Clock, utcnow
from keyfob.listen.receiver import _verified, describe
from keyfob.notifications.signing import secret_key
from keyfob.notifications.ws_channel import CALLBACK_HEADER


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


def gate(
    secrets: Sequence[str], say: Callable[[str], None], clock: Clock = utcnow
) -> Callable[[ServerConnection, Request], Response | None]:
    """The handshake check: None lets a validly signed connection in, else a 401."""

    def check(connection: ServerConnection, request: Request) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        signed = headers.get(CALLBACK_HEADER, "").encode()
        problem = _verified(secrets, headers, signed, clock())
        if problem is None:
            return None
        say(f"{_stamp(clock)}  !! {request.path}: handshake signature rejected ({problem}); 401")
        return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid signature\n")

    return check


async def start(
    host: str,
    port: int,
    say: Callable[[str], None],
    *,
    raw: bool = False,
    secrets: Sequence[str] = (),
) -> Server:
    """The receiver, listening; close it with ``close()`` and ``wait_closed()``."""
    for each in secrets:
        secret_key(each)
    check = gate(secrets, say) if secrets else None
    return await serve(handler(say, raw=raw), host, port, process_request=check)


async def serve_forever(
    host: str, port: int, say: Callable[[str], None], *, raw: bool, secrets: Sequence[str] = ()
) -> None:
    server = await start(host, port, say, raw=raw, secrets=secrets)
    checks = "handshake signature checked" if secrets else "not signed"
    say(f"listening on ws://{host}:{port}/ (WebSocket frames; {checks})")
    async with server:
        await asyncio.get_running_loop().create_future()  # until interrupted


def run(
    host: str,
    port: int,
    say: Callable[[str], None],
    *,
    raw: bool = False,
    secrets: Sequence[str] = (),
) -> None:
    asyncio.run(serve_forever(host, port, say, raw=raw, secrets=secrets))
