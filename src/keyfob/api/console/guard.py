"""Who is at the console: the session from the cookie, the partner it names, CSRF on posts.

A page asks for ``Visitor`` (a signed-in partner) or ``Anyone`` (a session, made if missing).
The partner is read again on every page, so a partner removed from the database is signed
out at once; everything a page shows is then looked up with that partner's id, exactly as
the API's routes look it up with the partner its credentials name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from keyfob.api.console.pages import SignInNeeded, read_form, root
from keyfob.api.console.session import COOKIE, LIFETIME, Session, SessionSealer, csrf_matches
from keyfob.api.console.session import derive_key as session_key
from keyfob.api.deps import Ctx
from keyfob.auth.service import Partner, get_partner_by_login
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.runtime.context import AppContext


@dataclass(frozen=True, slots=True)
class Visitor:
    partner: Partner
    session: Session


async def sealer(ctx: AppContext) -> SessionSealer:
    async with ctx.database.transaction() as conn:
        shared = await ctx.user_auth.keys.mac_secrets(conn, now=ctx.clock())
    return SessionSealer([session_key(secret) for secret in shared])


async def current_session(request: Request, ctx: AppContext) -> Session | None:
    return (await sealer(ctx)).open(request.cookies.get(COOKIE), now=ctx.clock())


async def visitor(request: Request, ctx: Ctx) -> Visitor:
    session = await current_session(request, ctx)
    if session is None or session.login is None:
        raise SignInNeeded
    async with ctx.database.read() as conn:
        partner = await get_partner_by_login(conn, session.login)
    if partner is None or partner.id != session.partner_id:
        raise SignInNeeded
    return Visitor(partner, session)


CurrentVisitor = Annotated[Visitor, Depends(visitor)]


def check_csrf(session: Session, form: dict[str, str]) -> None:
    """Every console form carries the session's token; another site's post does not."""
    if not csrf_matches(session, form.get("csrf")):
        raise KeyfobError(
            ErrorCode.FORBIDDEN,
            "this form is out of date or was not sent from the console; reload the page and "
            "send it again",
        )


async def sign_in_form(request: Request, ctx: AppContext) -> tuple[Session, dict[str, str]]:
    """A posted sign-in form (partner or end user) and the session its page was sent with:
    with no session there was no page, so the post is refused like a form without its token."""
    form = await read_form(request)
    session = await current_session(request, ctx)
    if session is None:
        raise KeyfobError(
            ErrorCode.FORBIDDEN, "the sign-in page expired or cookies are off; reload it"
        )
    check_csrf(session, form)
    return session, form


def secure(request: Request, ctx: AppContext) -> bool:
    """Whether the browser reaches keyfob over TLS: served here, or by a proxy in front."""
    public = (ctx.settings.public_url or "").lower()
    return request.url.scheme == "https" or ctx.settings.tls or public.startswith("https://")


async def keep(request: Request, ctx: AppContext, answer: Response, session: Session) -> None:
    """Set the session cookie on ``answer``: HttpOnly, SameSite=Strict, Secure over TLS."""
    answer.set_cookie(
        COOKIE,
        (await sealer(ctx)).seal(session),
        max_age=int(LIFETIME.total_seconds()),
        path=root(request),
        secure=secure(request, ctx),
        httponly=True,
        samesite="strict",
    )
