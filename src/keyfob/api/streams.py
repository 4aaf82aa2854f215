"""The event streams' transport, shared by both faces: SSE, WebSocket, and the poll cursor.

A route checks the caller and the callback (a 404 before anything streams), then hands the
callback id and the consumer's cursor here. ``feed`` yields what the consumer has not seen:
first the outbox after its cursor, page by page, then the process's ``Broadcaster`` feed, with
the rows committed between the two read again and not sent twice. Each item's id is the
notification id, which the consumer sends back (``Last-Event-ID``, ``after``) to resume.

A consumer too slow to keep up is cut off (``notifications.broadcast``): SSE sends
``event: cutoff`` with the last id sent, WebSocket closes with 1013 and that id as the reason.
When the server shuts down every stream ends (``Server``; WebSocket: 1012), so it does not wait
for them, and each consumer resumes from its last id.

    SSE:  retry: 1000 / id: <nid> / event: notification / [webhook-id / webhook-timestamp /
          webhook-signature] / data: <RemoteEvents|Message>
    WS:   text frames {"id": <nid>, "data": <RemoteEvents|Message>[, "signature": {...}]}
    poll: {"items": [{"id", "data"}], "next": <nid to send as after>}
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
import uvicorn
from fastapi import Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from keyfob.api.errors import error_response
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications import streams
from keyfob.notifications.broadcast import CLOSED, CUT, Broadcaster
from keyfob.notifications.streams import Item
from keyfob.runtime.context import AppContext

After = Annotated[
    str | None,
    Query(description="Resume after this event id (the `id` of an item already received)."),
]
LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event id (SSE reconnects)."),
]
Limit = Annotated[
    str | None, Query(description=f"Items at most in one answer, 1-{streams.PAGE} (100).")
]
SSE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Server-Sent Events, one per notification, `id` the event id.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
WS_DESCRIPTION = (
    "Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`): each text frame is "
    '`{"id", "data"}`. Resume with `?after=<id>`. Without the upgrade the answer is 400.'
)


def broadcaster(request: Request | WebSocket) -> Broadcaster:
    hub: Broadcaster = request.app.state.streams
    return hub


def cursor(after: str | None, last_event_id: str | None = None) -> str | None:
    """The consumer's cursor (``Last-Event-ID`` first), checked; ``None`` when it sent none."""
    if last_event_id:
        return streams.check_cursor(last_event_id, "Last-Event-ID")
    if after:
        return streams.check_cursor(after, "query after")
    return None


def start(mark: str | None) -> str:
    """Where a stream starts: after the consumer's cursor, or now. Fixed when the request
    arrives, so nothing stored after the answer's head and before the feed is missed."""
    return mark or streams.id_floor(time.time())


def limit_of(value: str | None) -> int:
    if value is None:
        return 100
    if not value.isdigit() or not 1 <= int(value) <= streams.PAGE:
        raise KeyfobError(
            ErrorCode.INVALID_QUERY, f"query limit: must be 1 to {streams.PAGE}, got {value[:20]!r}"
        )
    return int(value)


async def _outbox(
    ctx: AppContext, hub: Broadcaster, callback_id: str, after: str, limit: int = streams.PAGE
) -> list[Item]:
    async with ctx.database.read() as conn:
        rows = await streams.rows_after(
            conn, callback_id=callback_id, after=after, now=ctx.clock(), limit=limit
        )
        found = await streams.targets(conn, [callback_id]) if rows else {}
    if rows:
        await ctx.database.flush_read()
    return [hub.render(found[row.callback_id], row) for row in rows]


async def page(
    ctx: AppContext, hub: Broadcaster, callback_id: str, after: str | None, n: int
) -> bytes:
    """The poll cursor's answer (from the oldest within the horizon without ``after``)."""
    items = await _outbox(ctx, hub, callback_id, after or "", n)
    return streams.page_body(items, after)


async def feed(
    ctx: AppContext, hub: Broadcaster, callback_id: str, after: str
) -> AsyncIterator[Item | None]:
    """Items after ``after``, ``None`` when idle, ``CUT`` at a cut-off; ends on shutdown."""
    mark = after
    while items := await _outbox(ctx, hub, callback_id, mark):
        for item in items:
            yield item
        mark = items[-1].id
        if len(items) < streams.PAGE:
            break
    sub = hub.subscribe(callback_id, start=mark)
    try:
        # Stored between the last page and the subscription: sent once, whichever way.
        while items := await _outbox(ctx, hub, callback_id, mark):
            for item in items:
                sub.sent.add(item.id)
                yield item
            mark = items[-1].id
        while (found := await sub.next(hub.options.keepalive_s)) is not CLOSED:
            if found is not None and found.id in sub.sent:
                continue  # queued while the outbox was read again, and sent from there
            yield found
            if found is CUT:
                return
    finally:
        hub.unsubscribe(sub)


def _sse(item: Item) -> bytes:
    return streams.sse_event(item)


def sse_response(ctx: AppContext, hub: Broadcaster, callback_id: str, after: str) -> Response:
    async def events() -> AsyncIterator[bytes]:
        last = after
        yield b"retry: 1000\n\n"
        async for item in feed(ctx, hub, callback_id, after):
            if item is None:
                yield b": keep-alive\n\n"
            elif item is CUT:
                yield b"event: cutoff\ndata: %s\n\n" % orjson.dumps({"lastEventId": last})
            else:
                last = item.id
                yield _sse(item)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def refuse(websocket: WebSocket, refusal: KeyfobError) -> None:
    """The HTTP answer a REST call would get, instead of the upgrade."""
    await websocket.send_denial_response(
        error_response(refusal.error, refusal.message, refusal.headers)
    )


async def serve_websocket(
    websocket: WebSocket, ctx: AppContext, callback_id: str, after: str
) -> None:
    """Send the feed as text frames until the consumer leaves or is cut off."""
    hub = broadcaster(websocket)
    await websocket.accept()

    async def send() -> None:
        last = after
        async for item in feed(ctx, hub, callback_id, after):
            if item is CUT:
                await websocket.close(1013, f"too slow; resume after={last}")
                return
            if item is not None:  # idle: the server's pings keep the connection alive
                await websocket.send_text(streams.frame(item))
                last = item.id
        await websocket.close(1012, f"server restart; resume after={last}")

    async def watch() -> None:  # a consumer that leaves ends the feed at once
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [
        asyncio.create_task(send(), name="stream-ws-send"),
        asyncio.create_task(watch(), name="stream-ws-watch"),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                await task


class Server(uvicorn.Server):
    """uvicorn's server, ending the open event streams first when it shuts down: it waits for
    every open connection, and a stream would otherwise keep it waiting forever."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = getattr(getattr(self.config.app, "state", None), "streams", None)
        if isinstance(hub, Broadcaster):
            hub.close_all()
        await super().shutdown(sockets)
