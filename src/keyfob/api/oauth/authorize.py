"""``/am/oauth2/authorize``: the sign-in and consent pages, ending in a redirect with a code.

GET judges the request (``auth.authorize``) and shows the login page; the two POSTs carry the
signed flow (``auth.flow``) from page to page. Consent is asked of every client, first-party
ones included: it names what the app will be able to do, and the brand apps' headless
sign-in scripts expect a consent form after the login form. Handlers stay thin: the checks
are ``auth.authorize`` and ``auth.flow``'s, signing in is ``auth.users.sign_in`` (throttled),
and the code is ``auth.oauth``'s.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from keyfob.api.deps import Ctx
from keyfob.api.oauth import pages
from keyfob.api.oauth.params import read_form, refuse_nul
from keyfob.auth import oauth
from keyfob.auth.authorize import AuthorizeRequest, Refusal, error_redirect, judge, with_query
from keyfob.auth.clients import OAuthClient, get_client
from keyfob.auth.flow import (
    CONSENT_TTL,
    LOGIN_TTL,
    Flow,
    FlowSealer,
    cookie_digest,
    derive_key,
    new_cookie,
)
from keyfob.auth.oauth_errors import OAuthError
from keyfob.auth.users import sign_in
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.runtime.context import AppContext

router = APIRouter(prefix="/am/oauth2", tags=["Authorization server"], include_in_schema=False)

COOKIE = "kf_oauth_csrf"
PATH = "/am/oauth2/authorize"
RESTART = "Go back to the app and sign in again."
INVALID = "This sign-in link is not valid"


async def _sealer(ctx: AppContext) -> FlowSealer:
    async with ctx.database.transaction() as conn:
        secrets = await ctx.user_auth.keys.mac_secrets(conn, now=ctx.clock())
    return FlowSealer([derive_key(secret) for secret in secrets])


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _set_cookie(request: Request, answer: Response, cookie: str) -> None:
    answer.set_cookie(
        COOKIE,
        cookie,
        max_age=int(LOGIN_TTL.total_seconds()),
        path="/am/oauth2",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _refusal(refusal: Refusal, request: Request) -> Response:
    if refusal.redirect is None:
        return pages.error_page(
            INVALID,
            refusal.description,
            hint="The app that sent you here is not set up correctly. Nothing was sent to it.",
            root=_root(request),
        )
    return RedirectResponse(error_redirect(refusal), status_code=302, headers=pages.NO_STORE)


def _login_page(
    request: Request,
    flow: Flow,
    sealed: str,
    *,
    client_name: str,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return pages.render(
        "login.html",
        status=status,
        realm=flow.realm,
        locale=flow.locale,
        root=_root(request),
        redirect_uri=flow.redirect_uri,
        headers=headers,
        flow=sealed,
        client_name=client_name,
        login=flow.login or "",
        error=error,
    )


@router.get("/static/oauth.css")
async def style_sheet() -> Response:
    return pages.style_sheet()


@router.get("/authorize")
async def authorize(request: Request, ctx: Ctx) -> Response:
    query = request.query_params.multi_items()
    try:
        refuse_nul(query)
    except OAuthError as refusal:
        return pages.error_page(INVALID, refusal.description, root=_root(request))
    client_id = request.query_params.get("client_id")
    async with ctx.database.read() as conn:
        client = await get_client(conn, client_id) if client_id else None
    verdict = judge(query, client)
    if isinstance(verdict, Refusal):
        return _refusal(verdict, request)
    assert client is not None
    cookie = request.cookies.get(COOKIE) or ""
    if not 32 <= len(cookie) <= 64:
        cookie = new_cookie()
    flow = _new_flow(verdict, cookie, now=ctx.clock())
    answer = _login_page(request, flow, (await _sealer(ctx)).seal(flow), client_name=client.name)
    _set_cookie(request, answer, cookie)
    return answer


def _new_flow(asked: AuthorizeRequest, cookie: str, *, now: datetime) -> Flow:
    return Flow(
        step="login",
        client_id=asked.client_id,
        redirect_uri=asked.redirect_uri,
        realm=asked.realm,
        scopes=asked.scopes,
        state=asked.state,
        code_challenge=asked.code_challenge,
        locale=asked.locale,
        nonce=asked.nonce,
        csrf=cookie_digest(cookie),
        expires=int((now + LOGIN_TTL).timestamp()),
    )


@router.post("/authorize")
async def authorize_step(request: Request, ctx: Ctx) -> Response:
    try:
        form = dict(await read_form(request))
    except OAuthError as refusal:
        return pages.error_page("Sign-in failed", refusal.description, root=_root(request))
    step = form.get("step", "")
    sealer = await _sealer(ctx)
    flow = sealer.open(
        form.get("flow", ""), cookie=request.cookies.get(COOKIE), step=step, now=ctx.clock()
    )
    if flow is None:
        return pages.error_page(
            "This sign-in page has expired",
            "The page was open too long, or it was not opened in this browser.",
            status=403,
            hint=RESTART,
            root=_root(request),
        )
    async with ctx.database.read() as conn:
        client = await get_client(conn, flow.client_id)
    if client is None or flow.redirect_uri not in client.redirect_uris:
        return pages.error_page("This app is no longer registered", RESTART, root=_root(request))
    if step == "login":
        return await _login(request, ctx, sealer, flow, form, client_name=client.name)
    return await _consent(ctx, flow, form, client)


async def _login(
    request: Request,
    ctx: Ctx,
    sealer: FlowSealer,
    flow: Flow,
    form: dict[str, str],
    *,
    client_name: str,
) -> Response:
    login, password = form.get("login", "").strip(), form.get("password", "")
    typed = dataclasses.replace(flow, login=login[:254])
    if not login or not password:
        error = "Enter your login and your password."
        return _login_page(request, typed, sealer.seal(typed), client_name=client_name, error=error)
    address = request.client.host if request.client else None
    try:
        async with ctx.database.read() as conn:
            user = await sign_in(
                conn,
                login=login,
                password=password,
                address=address,
                throttle=ctx.user_auth.throttle,
                now=ctx.clock().timestamp(),
            )
    except KeyfobError as refusal:
        throttled = refusal.error is ErrorCode.SIGN_IN_THROTTLED
        error = (
            f"Too many failed sign-ins. Try again in {refusal.headers['Retry-After']} seconds."
            if throttled
            else "The login or the password is wrong."
        )
        return _login_page(
            request,
            typed,
            sealer.seal(typed),
            client_name=client_name,
            error=error,
            status=429 if throttled else 200,
            headers=refusal.headers if throttled else None,
        )
    consent = dataclasses.replace(
        typed,
        step="consent",
        user_id=user.id,
        login=user.login,
        expires=int((ctx.clock() + CONSENT_TTL).timestamp()),
    )
    return pages.render(
        "consent.html",
        realm=flow.realm,
        locale=flow.locale,
        root=_root(request),
        redirect_uri=flow.redirect_uri,
        flow=sealer.seal(consent),
        client_name=client_name,
        login=user.login,
        scopes=pages.scope_lines(flow.scopes),
    )


async def _consent(ctx: Ctx, flow: Flow, form: dict[str, str], client: OAuthClient) -> Response:
    if form.get("decision") != "allow" or flow.user_id is None:
        denied = Refusal(
            "access_denied", "the user did not allow access", flow.redirect_uri, flow.state
        )
        return RedirectResponse(error_redirect(denied), status_code=302, headers=pages.NO_STORE)
    async with ctx.database.transaction() as conn:
        issued = await oauth.issue_code(
            conn,
            auth=ctx.user_auth,
            client=client,
            user_id=flow.user_id,
            redirect_uri=flow.redirect_uri,
            scopes=flow.scopes,
            code_challenge=flow.code_challenge,
            nonce=flow.nonce,
            now=ctx.clock(),
        )
    target = with_query(
        flow.redirect_uri, [("code", issued.code), ("state", flow.state), ("scope", issued.scope)]
    )
    return RedirectResponse(target, status_code=302, headers=pages.NO_STORE)
