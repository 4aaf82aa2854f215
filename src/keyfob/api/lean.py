"""POST remote without FastAPI's routing and dependency solving, inside every middleware.

Accepting remotes is the endpoint clients call at volume, and measured on it FastAPI's router
and dependency solving cost more CPU than authenticating, validating and storing the remote.
``LeanRemotePost`` is therefore the router's first route: it claims ``POST .../remotes`` and
takes the documented route's steps (``routes_remotes.post_remote``) through the same functions
and in the same order:

    access.admit (credentials, client_id, U+0000, rate budget) ─► Idempotency-Key ─►
    Content-Type ─► JSON body ─► remote_post.accept (group commit) ─► 202 HAL answer

Being a route, it runs where the documented route would, the innermost layer of the ASGI
stack, so every middleware wraps it as it wraps every other endpoint:

    ServerErrorMiddleware (500) ─► user middleware (RateLimitHeaders, ...) ─►
    ExceptionMiddleware (KeyfobError ─► xError) ─► router ─► LeanRemotePost | FastAPI routes

It answers only the 202 itself. A refusal is raised, and the app's handlers render it; the
partner's ``X-RateLimit-*`` headers are left in ``scope["state"]`` for ``RateLimitHeaders``, as
the authentication dependency leaves them. Anything else (another method, a trailing slash, an
app mounted under a root path) falls through to the FastAPI routes. It is not an
``APIRoute``, so ``/openapi.json`` documents ``post_remote`` alone; ``Settings.lean_accept =
false`` leaves it out of the router.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from keyfob.api import access, remote_post
from keyfob.api.deps import base_url
from keyfob.api.http import MAX_BODY, HalResponse, check_media_type, parse_json, too_large
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.control.window import time_window
from keyfob.remotes.staging import ANY_TIME, TimeWindow
from keyfob.runtime.context import AppContext

PATH = re.compile(r"/connectedcar/v3/fleets/([^/]+)/vehicles/([^/]+)/callbacks/([^/]+)/remotes")
T = TypeVar("T")
WANTED = (
    b"authorization",
    b"idempotency-key",
    b"content-type",
    b"x-introspect-realm",
    b"keyfob-expires-at",  # extensions (docs/extensions.md): remotes.control.window
    b"keyfob-not-before",
    b"keyfob-budget",
)


class Disconnected(Exception):
    """The client went away before its body arrived: nothing to answer."""


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def wanted_headers(scope: Scope) -> dict[bytes, str]:
    """The first value of each header the endpoint reads, as Starlette's ``Headers.get``
    finds it (ASGI servers hand names over lower-cased)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in WANTED and name not in found:
            found[name] = value.decode("latin-1")
    return found


def query_of(scope: Scope) -> tuple[list[tuple[str, str]], str | None]:
    """The query's pairs and its ``client_id`` (the last one, as ``QueryParams.get``)."""
    query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    client_id = None
    for name, value in query:
        if name == "client_id":
            client_id = value
    return query, client_id


async def admitted(state: dict[str, Any], admission: Awaitable[tuple[T, dict[str, str]]]) -> T:
    """The caller an ``admit`` names, its budget's headers left for ``RateLimitHeaders``
    (a refused budget's too)."""
    try:
        caller, granted = await admission
    except KeyfobError as refusal:
        if refusal.error is ErrorCode.RATE_LIMITED:
            state["rate_headers"] = refusal.headers
        raise
    state["rate_headers"] = granted
    return caller


async def request_body(headers: dict[bytes, str], receive: Receive) -> tuple[str | None, object]:
    """Idempotency-Key, then Content-Type, then the JSON body, checked in the routes' order."""
    key = remote_post.idempotency_key(headers.get(b"idempotency-key"))
    check_media_type(headers.get(b"content-type", ""))
    return key, parse_json(await read_body(receive))


def window_of(headers: dict[bytes, str], ctx: AppContext) -> TimeWindow:
    """``Keyfob-Expires-At`` and ``Keyfob-Not-Before``, as the documented routes read them."""
    expires_at, not_before = headers.get(b"keyfob-expires-at"), headers.get(b"keyfob-not-before")
    if expires_at is None and not_before is None:
        return ANY_TIME
    return time_window(expires_at, not_before, now=ctx.clock())


class LeanRemotePost(BaseRoute):
    """The router's first route: POST remote, answered as ``post_remote`` answers it."""

    path = path_format = "/connectedcar/v3/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes"
    name = "lean_post_remote"
    include_in_schema = False

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._bases: dict[tuple[Any, ...], str] = {}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return Match.NONE, {}
        if b"dryRun" in scope["query_string"]:  # the documented route runs dry runs
            return Match.NONE, {}
        found = PATH.fullmatch(scope["path"])
        if found is None:
            return Match.NONE, {}
        fid, vid, cbid = found.groups()
        params = {"fid": fid, "vid": vid, "cbid": cbid}
        return Match.FULL, {"route": self, "endpoint": self.handle, "path_params": params}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        # ``url_for("post_remote", ...)`` is the documented route's to answer.
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        ids = (params["fid"], params["vid"], params["cbid"])
        try:
            response = await self._accept(scope, receive, ids)
        except Disconnected:
            return
        await response(scope, receive, send)

    async def _accept(
        self, scope: Scope, receive: Receive, ids: tuple[str, str, str]
    ) -> HalResponse:
        ctx = self.ctx
        state = scope.setdefault("state", {})
        request_headers = wanted_headers(scope)
        query, client_id = query_of(scope)
        client = scope.get("client")
        partner = await admitted(
            state,
            access.admit(
                ctx,
                access.basic_credentials(request_headers.get(b"authorization")),
                client_id,
                path_params=scope["path_params"],
                query=query,
                address=client[0] if client else None,
            ),
        )
        key, data = await request_body(request_headers, receive)
        window = window_of(request_headers, ctx)
        posted = await remote_post.accept(
            ctx,
            partner_id=partner.id,
            ids=ids,
            key=key,
            data=data,
            window=window,
            budget=b"keyfob-budget" in request_headers,
        )
        body, headers = remote_post.answer(self._base_url(scope), ids, posted)
        return HalResponse(body, status_code=202, headers=headers)

    def _base_url(self, scope: Scope, version: str = "v3") -> str:
        """``deps.base_url`` for this request, worked out once per scheme, host and server."""
        host = next((value for name, value in scope["headers"] if name == b"host"), None)
        server = scope.get("server")
        memo = (scope.get("scheme"), host, tuple(server) if server else None, version)
        found = self._bases.get(memo)
        if found is None:
            if len(self._bases) >= 64:
                self._bases.clear()
            found = self._bases[memo] = base_url(Request(scope), self.ctx, version)
        return found
