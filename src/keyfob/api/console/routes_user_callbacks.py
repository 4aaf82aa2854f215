"""An end user's callbacks in the console (list, create a webhook, pause and resume) and the
live timeline of a remote they sent.

A callback of the user face belongs to the (OAuth client, user) pair that made it (§2.4), so
the console lists and changes the callbacks made through the console's own client; the body a
form builds is judged by ``callbacks.user_schemas.parse_user_callback_body``, as the user
face's POST callback judges it. The timeline checks the vehicle, the callback and the remote
as the user face's GET remote does, then streams like the fleet console's
(``routes_timeline.event_stream``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyfob.api.console import pages, readable
from keyfob.api.console.guard import check_csrf
from keyfob.api.console.remote_form import Problems, place_at
from keyfob.api.console.routes_timeline import event_stream, timeline_page
from keyfob.api.console.routes_vehicles import page_of
from keyfob.api.console.user_guard import CurrentDriver, Driver
from keyfob.api.deps import Ctx
from keyfob.callbacks import user_service
from keyfob.callbacks.schemas import parse_status_setter
from keyfob.callbacks.user_schemas import CallbackType, parse_user_callback_body
from keyfob.errors import KeyfobError
from keyfob.remotes.rows import Remote
from keyfob.remotes.service import Event, get_user_remote
from keyfob.runtime.context import AppContext
from keyfob.vehicles.user_vehicles import get_user_vehicle

router = APIRouter(route_class=pages.ConsoleRoute)
FIELDS = ["label", "callback.webhook.name", "callback.webhook.target"]
TYPES = tuple(kind.value for kind in CallbackType)


def body_of(sent: dict[str, str]) -> dict[str, Any]:
    """The user face's callback body the form spells (a webhook)."""
    body: dict[str, Any] = {
        "callback": {
            "webhook": {
                "name": sent.get("callback.webhook.name", "").strip(),
                "target": sent.get("callback.webhook.target", "").strip(),
            }
        },
        "type": [kind for kind in TYPES if sent.get(f"type.{kind}")],
    }
    label = sent.get("label", "").strip()
    if label:
        body["label"] = label
    return body


async def _list_page(
    request: Request,
    ctx: AppContext,
    driver: Driver,
    *,
    status: int = 200,
    problems: Problems | None = None,
    sent: dict[str, str] | None = None,
) -> HTMLResponse:
    async with ctx.database.read() as conn:
        _, found = await user_service.list_user_callbacks(
            conn, owner=driver.owner, types=[], page=page_of(1, 100)
        )
    return pages.render(
        request,
        "user_callbacks.html",
        status=status,
        driver=driver,
        callbacks=found,
        problems=problems or Problems(),
        values=sent or {"type.Remote": "on"},
        types=TYPES,
        done=request.query_params.get("done"),
        when=readable.when,
    )


@router.get("/user/callbacks")
async def my_callbacks(request: Request, ctx: Ctx, driver: CurrentDriver) -> Response:
    return await _list_page(request, ctx, driver)


@router.post("/user/callbacks")
async def create_my_callback(request: Request, ctx: Ctx, driver: CurrentDriver) -> Response:
    sent = await pages.read_form(request)
    check_csrf(driver.session, sent)
    try:
        parsed = parse_user_callback_body(body_of(sent), target_policy=ctx.target_policy)
    except KeyfobError as refusal:
        problems = place_at(FIELDS, refusal.message)
        return await _list_page(
            request, ctx, driver, status=refusal.status, problems=problems, sent=sent
        )
    async with ctx.database.transaction() as conn:
        callback, secret = await user_service.create_user_callback(
            conn, owner=driver.owner, parsed=parsed, now=ctx.clock()
        )
    return pages.render(
        request,
        "secret.html",
        driver=driver,
        callback=callback,
        secret=secret,
        title="Callback created",
        callback_url=f"{pages.root(request)}/user/callbacks",
    )


@router.post("/user/callbacks/{cbid}/status")
async def pause_or_resume_mine(
    request: Request, ctx: Ctx, driver: CurrentDriver, cbid: str
) -> Response:
    sent = await pages.read_form(request)
    check_csrf(driver.session, sent)
    status = parse_status_setter({"status": sent.get("status", "")})
    async with ctx.database.transaction() as conn:
        current = await user_service.get_user_callback(conn, owner=driver.owner, callback_id=cbid)
        await user_service.set_user_status(conn, callback=current, status=status, now=ctx.clock())
    ctx.wake()
    return pages.see_other(request, f"/user/callbacks?done={status.value}")


TIMELINE = "/user/vehicles/{vid}/callbacks/{cbid}/remotes/{rid}"


async def _history(
    ctx: AppContext, driver: Driver, vid: str, cbid: str, rid: str
) -> tuple[Remote, list[Event]]:
    async with ctx.database.read() as conn:
        await get_user_vehicle(conn, user_id=driver.principal.user_id, vehicle_id=vid)
        await user_service.get_user_callback(
            conn, owner=driver.owner, callback_id=cbid, include_deleted=True
        )
        return await get_user_remote(
            conn, owner=driver.owner, vehicle_id=vid, callback_id=cbid, remote_id=rid
        )


@router.get(TIMELINE)
async def my_timeline(
    request: Request, ctx: Ctx, driver: CurrentDriver, vid: str, cbid: str, rid: str
) -> Response:
    remote, events = await _history(ctx, driver, vid, cbid, rid)
    vehicle_url = f"{pages.root(request)}/user/vehicles/{vid}"
    return timeline_page(request, vehicle_url, (cbid, rid), remote, events, driver=driver)


@router.get(TIMELINE + "/events")
async def my_timeline_events(
    request: Request, ctx: Ctx, driver: CurrentDriver, vid: str, cbid: str, rid: str
) -> Response:
    """The fleet console's stream, for a remote the user face would show this user."""
    _, known = await _history(ctx, driver, vid, cbid, rid)  # 404 before any stream
    return event_stream(ctx, request, rid, known)
