"""An end user signs in to the console through keyfob's own OAuth login, and signs out.

The console is an OAuth client of keyfob's authorization server, like any app
(``auth.console_client``: one per brand realm, registered on first use):

    POST /console/user/login  realm ─► session.pending{state, PKCE verifier}
        ─► 303 /am/oauth2/authorize?client_id=keyfob-console-…&code_challenge=…
    (the login and consent pages of /am/oauth2, as for every app)
    GET  /console/user/callback?code&state ─► state is the session's? ─► exchange_code
                               (in the server, with the verifier) ─► session.user{grant}

Signing out revokes the grant, so a copy of the cookie taken before is worth nothing after.
A refused exchange (a code spent twice revokes the grant it started) is committed before the
error page is shown, as the token endpoint does.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.api.console import guard, pages
from keyfob.api.console.session import PendingSignIn, Session, UserSignIn, new_session
from keyfob.api.console.user_guard import CurrentDriver
from keyfob.api.deps import Ctx
from keyfob.auth import oauth
from keyfob.auth.authorize import with_query
from keyfob.auth.clients import OAuthClient, get_client
from keyfob.auth.console_client import client_id_for, console_client, redirect_uri
from keyfob.auth.oauth_errors import OAuthError
from keyfob.auth.pkce import new_verifier, s256
from keyfob.auth.realms import REALMS, Realm, find_realm
from keyfob.auth.user_models import oauth_grants
from keyfob.auth.users import get_user
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.text import shown
from keyfob.runtime.context import AppContext

router = APIRouter(route_class=pages.ConsoleRoute)
SCOPE = "openid profile"
"""What the console asks for; being first-party, it is granted every data and remote scope."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _login_page(
    request: Request, session: Session, *, error: str | None = None, status: int = 200
) -> Response:
    return pages.render(
        request,
        "user_login.html",
        status=status,
        csrf=session.csrf,
        realms=REALMS,
        error=error,
    )


@router.get("/user/login")
async def user_login_page(request: Request, ctx: Ctx) -> Response:
    home = ctx.settings.root_url
    if _origin(str(request.base_url)) != _origin(home):
        # The code comes back to the registered address only: start there, so the session
        # cookie that holds the PKCE verifier is the one the callback will read.
        return RedirectResponse(home + "/console/user/login", 303, headers=pages.SECURITY_HEADERS)
    session = await guard.current_session(request, ctx)
    if session is not None and session.user is not None:
        return pages.see_other(request, "/user/")
    session = session or new_session(now=ctx.clock())
    answer = _login_page(request, session)
    await guard.keep(request, ctx, answer, session)
    return answer


async def _client(ctx: AppContext, realm: Realm) -> OAuthClient:
    redirect = redirect_uri(ctx.settings.root_url)
    for attempt in range(2):
        try:
            async with ctx.database.transaction() as conn:
                return await console_client(conn, realm=realm, redirect=redirect, now=ctx.clock())
        except IntegrityError:
            if attempt:  # another process registered it between our read and our write
                raise
    raise AssertionError("unreachable")


@router.post("/user/login")
async def start_sign_in(request: Request, ctx: Ctx) -> Response:
    _, form = await guard.sign_in_form(request, ctx)
    realm = find_realm(form.get("realm"))
    if realm is None:
        raise KeyfobError(
            ErrorCode.UNKNOWN_REALM, f"no brand realm is named {shown(form.get('realm', ''))}"
        )
    client = await _client(ctx, realm)
    pending = PendingSignIn(secrets.token_urlsafe(24), new_verifier(), realm.name)
    target = with_query(
        str(request.scope.get("root_path", "")).rstrip("/") + "/am/oauth2/authorize",
        [
            ("response_type", "code"),
            ("client_id", client.client_id),
            ("redirect_uri", client.redirect_uris[0]),
            ("scope", SCOPE),
            ("state", pending.state),
            ("code_challenge", s256(pending.verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    answer = RedirectResponse(target, status_code=303, headers=pages.SECURITY_HEADERS)
    await guard.keep(request, ctx, answer, new_session(now=ctx.clock(), pending=pending))
    return answer


@router.get("/user/callback")
async def finish_sign_in(request: Request, ctx: Ctx) -> Response:
    session = await guard.current_session(request, ctx)
    pending = None if session is None else session.pending
    state = request.query_params.get("state") or ""
    if session is None or pending is None or not hmac.compare_digest(pending.state, state):
        raise KeyfobError(
            ErrorCode.FORBIDDEN,
            "this sign-in was not started in this browser, or it was already finished; "
            "sign in again from the console",
        )
    fresh = new_session(now=ctx.clock())
    if request.query_params.get("error"):
        why = request.query_params.get("error_description") or request.query_params["error"]
        answer = _login_page(request, fresh, error=f"You were not signed in: {why}.", status=401)
        await guard.keep(request, ctx, answer, fresh)
        return answer
    signed = await _exchange(ctx, pending, request.query_params.get("code"))
    answer = pages.see_other(request, "/user/")
    await guard.keep(request, ctx, answer, new_session(now=ctx.clock(), user=signed))
    return answer


async def _exchange(ctx: AppContext, pending: PendingSignIn, code: str | None) -> UserSignIn:
    """The code exchanged in the server, with the verifier only this session holds."""
    realm = find_realm(pending.realm)
    assert realm is not None
    async with ctx.database.transaction() as conn:
        client = await get_client(conn, client_id_for(realm))
        if client is None:
            raise KeyfobError(ErrorCode.FORBIDDEN, "the console's sign-in client is gone")
        signed: UserSignIn | OAuthError
        try:
            signed = await _signed_in(ctx, conn, client, realm, pending, code)
        except OAuthError as refused:
            signed = refused  # committed all the same: a reused code has revoked its grant
    if isinstance(signed, OAuthError):
        raise KeyfobError(ErrorCode.FORBIDDEN, f"the sign-in failed: {signed.description}")
    return signed


async def _signed_in(
    ctx: AppContext,
    conn: AsyncConnection,
    client: OAuthClient,
    realm: Realm,
    pending: PendingSignIn,
    code: str | None,
) -> UserSignIn:
    tokens = await oauth.exchange_code(
        conn,
        auth=ctx.user_auth,
        client=client,
        code=code,
        redirect_uri=client.redirect_uris[0],
        code_verifier=pending.verifier,
        now=ctx.clock(),
    )
    query = select(oauth_grants.c.user_id).where(oauth_grants.c.id == tokens.grant_id)
    user = await get_user(conn, (await conn.execute(query)).scalar_one())
    assert user is not None  # the code was issued for an existing user, in this transaction
    return UserSignIn(
        user_id=user.id,
        login=user.login,
        client_id=client.client_id,
        realm=realm.name,
        grant_id=tokens.grant_id,
        scopes=tuple(sorted(tokens.scope.split())),
    )


@router.post("/user/logout")
async def user_sign_out(request: Request, ctx: Ctx, driver: CurrentDriver) -> Response:
    guard.check_csrf(driver.session, await pages.read_form(request))
    assert driver.session.user is not None
    async with ctx.database.transaction() as conn:
        await oauth.revoke_grant(
            conn, auth=ctx.user_auth, grant_id=driver.session.user.grant_id, now=ctx.clock()
        )
    answer = pages.see_other(request, "/user/login")
    await guard.keep(request, ctx, answer, new_session(now=ctx.clock()))
    return answer
