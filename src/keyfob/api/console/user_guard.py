"""Who is at the console as an end user: the session's user and the OAuth grant they signed in
with, checked again on every page.

The user must still exist and the grant must not be revoked (signing out revokes it, and so
does anything that revokes the user's grants, such as a code presented twice): either way the
console sends them to sign in again. What a page may then do is exactly what the user face's
routes may do for a token of that grant: ``principal`` is the ``UserPrincipal`` those routes
get, so every look-up is by this user (and by the console's OAuth client, for callbacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from keyfob.api.console.guard import current_session
from keyfob.api.console.pages import SignInNeeded
from keyfob.api.console.session import Session
from keyfob.api.deps import Ctx
from keyfob.auth.principal import UserPrincipal
from keyfob.auth.user_models import oauth_grants
from keyfob.auth.users import User, get_user
from keyfob.callbacks.user_service import Owner


@dataclass(frozen=True, slots=True)
class Driver:
    user: User
    principal: UserPrincipal
    session: Session

    @property
    def owner(self) -> Owner:
        return Owner(self.principal.client_id, self.principal.user_id)


async def driver(request: Request, ctx: Ctx) -> Driver:
    session = await current_session(request, ctx)
    if session is None or session.user is None:
        raise SignInNeeded
    signed = session.user
    async with ctx.database.read() as conn:
        user = await get_user(conn, signed.user_id)
        revoked = (
            await conn.execute(
                select(oauth_grants.c.revoked_at).where(oauth_grants.c.id == signed.grant_id)
            )
        ).first()
    if user is None or revoked is None or revoked.revoked_at is not None:
        raise SignInNeeded
    principal = UserPrincipal(
        signed.user_id, signed.client_id, signed.realm, frozenset(signed.scopes)
    )
    return Driver(user, principal, session)


CurrentDriver = Annotated[Driver, Depends(driver)]
