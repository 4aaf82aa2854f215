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

import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyfob.api.console import figures, pages, readable
from keyfob.api.console.guard import check_csrf
from keyfob.api.console.remote_form import BY_ACTION, FORMS, ActionForm, Problems, body_of, place
from keyfob.api.console.routes_vehicles import FIELD_ERRORS, page_of
from keyfob.api.console.user_guard import CurrentDriver, Driver
from keyfob.api.deps import Ctx
from keyfob.auth.scopes import scope_for
from keyfob.callbacks.user_service import UserCallback, list_user_callbacks
from keyfob.errors import ErrorCode, KeyfobError
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
    request: Request,
    ctx: AppContext,
    driver: Driver,
    vid: str,
    *,
    status: int = 200,
    failed: str | None = None,
    problems: Problems | None = None,
    sent: dict[str, str] | None = None,
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
    here = f"{pages.root(request)}/user/vehicles/{vehicle.id}"
    return pages.render(
        request,
        "user_vehicle.html",
        status=status,
        driver=driver,
        vehicle=vehicle,
        known=known,
        status_lines=readable.lines(document),
        capability_lines=readable.lines(user_vehicles.user_capabilities(vehicle.capabilities)),
        position=readable.position(document),
        recent=recent,
        here=here,
        remotes_url=f"{here}/remotes",
        csrf=driver.session.csrf,
        no_callbacks=NO_CALLBACKS,
        callbacks=callbacks,
        callback_note=user_callback_note,
        forms=USER_FORMS,
        failed=failed,
        problems=problems or Problems(),
        sent=sent or {},
        idempotency=secrets.token_urlsafe(16),
        when=readable.when,
    )


@router.get("/user/vehicles/{vid}")
async def my_vehicle(request: Request, ctx: Ctx, driver: CurrentDriver, vid: str) -> Response:
    return await _vehicle_page(request, ctx, driver, vid)


@router.post("/user/vehicles/{vid}/remotes")
async def send_my_remote(request: Request, ctx: Ctx, driver: CurrentDriver, vid: str) -> Response:
    """Accept the form's remote as the user face's POST remote would, then show its timeline."""
    sent = await pages.read_form(request)
    check_csrf(driver.session, sent)
    form = BY_ACTION.get(sent.get("action", ""))
    if form is None or form not in USER_FORMS:
        raise KeyfobError(ErrorCode.BAD_REQUEST, "the form names no remote action of the user face")
    callback_id = sent.get("callback", "")
    try:
        posted = await ctx.acceptor.accept(
            UserAcceptRequest(
                client_id=driver.principal.client_id,
                user_id=driver.principal.user_id,
                scopes=driver.principal.scopes,
                vehicle_id=vid,
                callback_id=callback_id,
                data=body_of(form, sent),
                idempotency_key=sent.get("idempotency") or None,
            )
        )
    except KeyfobError as refusal:
        if refusal.status == 404 and refusal.error is not ErrorCode.CALLBACK_NOT_FOUND:
            raise
        general = refusal.error not in FIELD_ERRORS
        problems = Problems(general=[refusal.message]) if general else place(form, refusal.message)
        return await _vehicle_page(
            request,
            ctx,
            driver,
            vid,
            status=refusal.status,
            failed=form.action,
            problems=problems,
            sent=sent,
        )
    ctx.wake()
    return pages.see_other(
        request, f"/user/vehicles/{vid}/callbacks/{callback_id}/remotes/{posted.remote_id}"
    )
