"""Signing in to the console with a partner's fleet-face credentials, and signing out.

The same three things the API asks in every request (login, password, ``client_id``) are
asked once here and checked by the same ``api.access.verify_partner``, under the same
throttle of failed logins; a wrong one gets the same answer whichever it was. The sign-in form
is CSRF-protected too (login CSRF: another site must not sign a browser in to an account of its
choosing).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyfob.api.access import verify_partner
from keyfob.api.console import guard, pages
from keyfob.api.console.session import new_session
from keyfob.api.deps import Ctx
from keyfob.errors import ErrorCode, KeyfobError

router = APIRouter(route_class=pages.ConsoleRoute)
WRONG = "The login, password or client id is wrong."


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    return pages.asset(name)


@router.get("/login")
async def login_page(request: Request, ctx: Ctx) -> Response:
    session = await guard.current_session(request, ctx)
    if session is not None and session.partner_id is not None:
        return pages.see_other(request, "/")
    if session is not None and session.user is not None:
        return pages.see_other(request, "/user/")
    session = session or new_session(now=ctx.clock())
    answer = pages.render(request, "login.html", csrf=session.csrf, login="", client_id="")
    await guard.keep(request, ctx, answer, session)
    return answer


@router.post("/login")
async def sign_in(request: Request, ctx: Ctx) -> Response:
    session, form = await guard.sign_in_form(request, ctx)
    login, client_id = form.get("login", ""), form.get("client_id", "")
    try:
        partner = await verify_partner(
            ctx,
            login=login,
            password=form.get("password", ""),
            client_id=client_id,
            address=request.client.host if request.client else None,
        )
    except KeyfobError as refusal:
        throttled = refusal.error is ErrorCode.SIGN_IN_THROTTLED
        if refusal.error is not ErrorCode.BAD_CREDENTIALS and not throttled:
            raise
        wait = refusal.headers.get("Retry-After", "")
        refused = pages.render(
            request,
            "login.html",
            status=429 if throttled else 401,
            csrf=session.csrf,
            login=login,
            client_id=client_id,
            error=f"Too many failed sign-ins. Try again in {wait} seconds." if throttled else WRONG,
        )
        if throttled:
            refused.headers["Retry-After"] = wait
        return refused
    answer = pages.see_other(request, "/")
    fresh = new_session(now=ctx.clock(), partner_id=partner.id, login=partner.login)
    await guard.keep(request, ctx, answer, fresh)
    return answer


@router.post("/logout")
async def sign_out(request: Request, ctx: Ctx, visitor: guard.CurrentVisitor) -> Response:
    guard.check_csrf(visitor.session, await pages.read_form(request))
    answer = pages.see_other(request, "/login")
    await guard.keep(request, ctx, answer, new_session(now=ctx.clock()))
    return answer
