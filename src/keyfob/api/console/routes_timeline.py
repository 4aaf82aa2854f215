"""A remote's timeline, live: the page shows the events so far, then Server-Sent Events add
each new one as the dispatcher records it, until Done.

The stream checks the remote as the API's read does (``remotes.service.get_remote``, scoped
the same way), then reads only the events after the last one sent, from the database, so it
follows remotes run by a dispatcher in any process. Each event carries its sequence number as
the SSE ``id``: a browser that reconnects sends ``Last-Event-ID`` and gets only what it missed.
A stream ends after Done, or after a while (the browser then reconnects), so no connection is
held forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from keyfob.api.console import figures, pages, readable
from keyfob.api.console.guard import CurrentVisitor
from keyfob.api.deps import Ctx
from keyfob.callbacks.service import get_callback
from keyfob.remotes.rows import Remote
from keyfob.remotes.service import Event, get_remote
from keyfob.runtime.context import AppContext
from keyfob.vehicles.service import Fleet, get_fleet, get_vehicle
from keyfob.vocabulary import EventType

router = APIRouter(route_class=pages.ConsoleRoute)
PATH = "/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes/{rid}"
POLL_S = 0.2
STREAM_S = 120.0


async def _history(
    ctx: AppContext, partner_id: str, ids: tuple[str, str, str, str]
) -> tuple[Fleet, Remote, list[Event]]:
    fid, vid, cbid, rid = ids
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=partner_id, fleet_id=fid)
        await get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        await get_callback(conn, fleet_id=fid, callback_id=cbid)
        remote, events = await get_remote(
            conn, fleet_id=fid, vehicle_id=vid, callback_id=cbid, remote_id=rid
        )
    return fleet, remote, events


def finished(events: list[Event]) -> bool:
    return bool(events) and events[-1].type == EventType.DONE.value


def sse(event: Event) -> bytes:
    data = {
        "seq": event.seq,
        "type": event.type,
        "status": event.status,
        "failureCause": event.failure_cause,
        "feedbackDetail": event.feedback_detail,
        "at": readable.when(event.created_at),
    }
    return b"id: %d\nevent: step\ndata: %s\n\n" % (event.seq, orjson.dumps(data))


@router.get(PATH)
async def timeline(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, vid: str, cbid: str, rid: str
) -> Response:
    fleet, remote, events = await _history(ctx, visitor.partner.id, (fid, vid, cbid, rid))
    vehicle_url = f"{pages.root(request)}/fleets/{fid}/vehicles/{vid}"
    return timeline_page(
        request, vehicle_url, (cbid, rid), remote, events, visitor=visitor, fleet=fleet
    )


def timeline_page(
    request: Request,
    vehicle_url: str,
    ids: tuple[str, str],
    remote: Remote,
    events: list[Event],
    **face: Any,
) -> HTMLResponse:
    """The timeline page of a remote the caller was found allowed to read, for either face
    (``face`` is who looks: the visitor and the fleet, or the driver); ``ids`` are the
    callback's and the remote's."""
    cbid, rid = ids
    return pages.render(
        request,
        "timeline.html",
        remote=remote,
        events=events,
        finished=finished(events),
        vehicle_url=vehicle_url,
        events_url=f"{vehicle_url}/callbacks/{cbid}/remotes/{rid}/events",
        when=readable.when,
        **face,
    )


@router.get(PATH + "/events")
async def timeline_events(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, vid: str, cbid: str, rid: str
) -> Response:
    """``text/event-stream`` of the events after ``Last-Event-ID`` (or ``after``), then ``end``."""
    _, _, known = await _history(ctx, visitor.partner.id, (fid, vid, cbid, rid))  # 404 first
    return event_stream(ctx, request, rid, known)


def event_stream(
    ctx: AppContext, request: Request, remote_id: str, known: list[Event]
) -> StreamingResponse:
    """The stream of a remote the caller was found allowed to read, whose events so far are
    ``known``: what follows ``Last-Event-ID`` (or ``after``), then ``end`` after Done."""
    mark = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    seen = int(mark) if mark.isdigit() and len(mark) < 10 else 0
    done_seq = known[-1].seq if finished(known) else None

    async def stream() -> AsyncIterator[bytes]:
        nonlocal seen, done_seq
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_S
        yield b"retry: 1000\n\n"
        while True:
            if done_seq is None or seen < done_seq:
                async with ctx.database.read() as conn:
                    events = await figures.events_after(conn, remote_id=remote_id, seq=seen)
                for event in events:
                    seen = event.seq
                    yield sse(event)
                if finished(events):
                    done_seq = seen
            if done_seq is not None and seen >= done_seq:
                yield b"event: end\ndata: {}\n\n"
                return
            if loop.time() >= deadline:
                return
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={**pages.SECURITY_HEADERS, "X-Accel-Buffering": "no"},
    )
