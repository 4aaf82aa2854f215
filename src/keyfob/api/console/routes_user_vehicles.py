"""An end user's vehicles in the console, one vehicle with its remote forms, and sending one.

Scoped as the user face is: vehicles through the user's links (``vehicles.user_vehicles``),
callbacks of the (console client, user) pair (``callbacks.user_service``), the status as
``GET /user/vehicles/{id}/status`` shows it for the grant's scopes. A remote goes to the
acceptor as the user face's POST remote sends it (a ``UserAcceptRequest`` with the grant's
scopes, judged by ``remotes.accept_user``), so it is judged exactly as that one is: someone
else's vehicle or callback is a 404 and nothing is stored. Immobilization and Stolen are not
offered (the user face has no such action).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyfob.api.console import figures, pages, readable
from keyfob.api.console.remote_form import FORMS, ActionForm
from keyfob.api.console.routes_vehicles import page_of
from keyfob.api.console.user_guard import CurrentDriver, Driver
from keyfob.api.console.vehicle_page import FIRST, Retry, remote_forms, send_remote
from keyfob.api.deps import Ctx
from keyfob.auth.scopes import scope_for
from keyfob.callbacks.user_service import UserCallback, list_user_callbacks
from keyfob.remotes.accept import UserAcceptRequest
from keyfob.runtime.context import AppContext
from keyfob.vehicles import state as vehicle_state
from keyfob.vehicles import user_vehicles
from keyfob.vehicles.user_status import user_status_document
from keyfob.vocabulary import CallbackStatus, RemoteType

router = APIRouter(route_class=pages.ConsoleRoute)
USER_FORMS = tuple(f for f in FORMS if scope_for(RemoteType(f.remote_type)) is not None)
NO_CALLBACKS = "You have no callback yet: create one on the Callbacks page to send remotes."


def user_callback_note(callback: UserCallback, form: ActionForm) -> str:
    note = "" if callback.carries_remotes else " (not for remotes)"
    return note + ("" if callback.status is CallbackStatus.RUNNING else f" ({callback.status})")


@router.get("/user/")
async def my_vehicles(request: Request, ctx: Ctx, driver: CurrentDriver) -> Response:
    async with ctx.database.read() as conn:
        total, found = await user_vehicles.list_user_vehicles(
            conn, user_id=driver.principal.user_id, page=page_of(1, 100)
        )
        states = [await vehicle_state.get_state(conn, v.id) for v in found]
    return pages.render(
        request,
        "user_vehicles.html",
        driver=driver,
        lines=list(zip(found, states, strict=True)),
        total=total,
        when=readable.when,
    )


async def _vehicle_page(
    request: Request, ctx: AppContext, driver: Driver, vid: str, retry: Retry = FIRST
) -> HTMLResponse:
    user_id = driver.principal.user_id
    async with ctx.database.read() as conn:
        vehicle = await user_vehicles.get_user_vehicle(conn, user_id=user_id, vehicle_id=vid)
        known = await vehicle_state.get_state(conn, vehicle.id)
        _, callbacks = await list_user_callbacks(
            conn, owner=driver.owner, types=[], page=page_of(1, 60)
        )
        recent = await figures.recent_user_remotes(
            conn, client_id=driver.owner.client_id, user_id=user_id, vehicle_id=vehicle.id
        )
    document = None
    if known.status is not None and known.status_at is not None:
        document = user_status_document(
            vin=vehicle.vin,
            reported=known.status,
            reported_at=known.status_at,
            scopes=driver.principal.scopes,
            self_href="",
            vehicle_href="",
        )
    return pages.render(
        request,
        "user_vehicle.html",
        driver=driver,
        vehicle=vehicle,
        known=known,
        status_lines=readable.lines(document),
        capability_lines=readable.lines(user_vehicles.user_capabilities(vehicle.capabilities)),
        position=readable.position(document),
        recent=recent,
        **remote_forms(
            vehicle_url=f"{pages.root(request)}/user/vehicles/{vehicle.id}",
            csrf=driver.session.csrf,
            forms=USER_FORMS,
            callbacks=callbacks,
            callback_note=user_callback_note,
            no_callbacks=NO_CALLBACKS,
            retry=retry,
        ),
    )


@router.get("/user/vehicles/{vid}")
async def my_vehicle(request: Request, ctx: Ctx, driver: CurrentDriver, vid: str) -> Response:
    return await _vehicle_page(request, ctx, driver, vid)


@router.post("/user/vehicles/{vid}/remotes")
async def send_my_remote(request: Request, ctx: Ctx, driver: CurrentDriver, vid: str) -> Response:
    """Accept the form's remote as the user face's POST remote would, then show its timeline."""

    def accept_for(callback_id: str, data: dict[str, Any], key: str | None) -> UserAcceptRequest:
        return UserAcceptRequest(
            client_id=driver.principal.client_id,
            user_id=driver.principal.user_id,
            scopes=driver.principal.scopes,
            vehicle_id=vid,
            callback_id=callback_id,
            data=data,
            idempotency_key=key,
        )

    outcome = await send_remote(
        request,
        ctx,
        driver.session,
        forms=USER_FORMS,
        unknown_action="the form names no remote action of the user face",
        accept_for=accept_for,
    )
    if isinstance(outcome, Retry):
        return await _vehicle_page(request, ctx, driver, vid, outcome)
    return pages.see_other(
        request,
        f"/user/vehicles/{vid}/callbacks/{outcome.callback_id}/remotes/{outcome.remote_id}",
    )
