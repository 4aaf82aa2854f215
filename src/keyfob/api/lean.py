"""POST remote without the framework in the way.

Accepting remotes is the endpoint clients call at volume, and measured on it FastAPI's
middleware stack, router and dependency solving cost more CPU than authenticating, validating
and storing the remote. ``KeyfobApp`` therefore hands a ``POST .../remotes`` straight to
``LeanRemotePost``, which takes the documented route's steps (``routes_remotes.post_remote``)
through the same functions and in the same order:

    access.admit (credentials, client_id, U+0000, rate budget) ─► Idempotency-Key ─►
    Content-Type ─► JSON body ─► remote_post.accept (group commit) ─► 202 HAL answer

Errors are the same ``xError`` bodies, and every answer after authentication carries the
partner's ``X-RateLimit-*`` headers, as ``RateLimitHeaders`` adds them on the FastAPI side.
Anything else (another method, a trailing slash, an app mounted under a root path) goes to
FastAPI. ``Settings.lean_accept = false`` sends everything there.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from keyfob.api import access, remote_post
from keyfob.api.deps import base_url
from keyfob.api.errors import error_body
from keyfob.api.http import MAX_BODY, check_media_type, parse_json
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.runtime.context import AppContext

log = logging.getLogger("keyfob.api")

PATH = re.compile(r"/connectedcar/v3/fleets/([^/]+)/vehicles/([^/]+)/callbacks/([^/]+)/remotes")
HAL = b"application/hal+json"
JSON = b"application/json"

Ids = tuple[str, str, str]
WANTED = (b"authorization", b"idempotency-key", b"content-type")


class Disconnected(Exception):
    """The client went away before its body arrived: nothing to answer."""


def _render(content: Any) -> bytes:
    """As Starlette's ``JSONResponse`` renders, so both paths answer byte for byte alike."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise KeyfobError(ErrorCode.INVALID_BODY, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(scope: Scope) -> dict[bytes, str]:
    """The first value of each header the endpoint reads, as Starlette's ``Headers.get``
    finds it (ASGI servers hand names over lower-cased)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in WANTED and name not in found:
            found[name] = value.decode("latin-1")
    return found


class LeanRemotePost:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._bases: dict[tuple[Any, ...], str] = {}

    def _base_url(self, scope: Scope) -> str:
        """``deps.base_url`` for this request, worked out once per scheme, host and server."""
        host = next((value for name, value in scope["headers"] if name == b"host"), None)
        server = scope.get("server")
        memo = (scope.get("scheme"), host, tuple(server) if server else None)
        found = self._bases.get(memo)
        if found is None:
            if len(self._bases) >= 64:
                self._bases.clear()
            found = self._bases[memo] = base_url(Request(scope), self.ctx)
        return found

    @staticmethod
    def match(scope: Scope) -> Ids | None:
        """The path's (fid, vid, cbid) when this request is a POST remote the lean path serves."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        found = PATH.fullmatch(scope["path"])
        if found is None:
            return None
        fid, vid, cbid = found.groups()
        return fid, vid, cbid

    async def __call__(self, scope: Scope, receive: Receive, send: Send, ids: Ids) -> None:
        rate_headers: dict[str, str] = {}
        media = HAL
        try:
            status, body, headers = await self._accept(scope, receive, ids, rate_headers)
        except Disconnected:
            return
        except KeyfobError as refusal:
            media = JSON
            status = refusal.error.status
            body = error_body(refusal.error, refusal.message)
            headers = refusal.headers
        except Exception as exc:  # a bug: the same 500 the FastAPI side answers
            log.exception("unexpected error", exc_info=exc)
            media = JSON
            status = 500
            body = error_body(ErrorCode.INTERNAL, "unexpected server error; it has been logged")
            headers = {}
        content = _render(body)
        raw = [(b"content-length", str(len(content)).encode()), (b"content-type", media)]
        present = set()
        for name, value in headers.items():
            raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
            present.add(name.lower())
        raw.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in rate_headers.items()
            if name.lower() not in present
        )
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    async def _accept(
        self, scope: Scope, receive: Receive, ids: Ids, rate_headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        ctx = self.ctx
        request_headers = _headers(scope)
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        client_id = None
        for name, value in query:  # the last one, as Starlette's ``QueryParams.get``
            if name == "client_id":
                client_id = value
        fid, vid, cbid = ids
        try:
            partner, granted = await access.admit(
                ctx,
                access.basic_credentials(request_headers.get(b"authorization")),
                client_id,
                path_params={"fid": fid, "vid": vid, "cbid": cbid},
                query=query,
            )
        except KeyfobError as refusal:
            if refusal.error is ErrorCode.RATE_LIMITED:
                rate_headers.update(refusal.headers)
            raise
        rate_headers.update(granted)
        key = remote_post.idempotency_key(request_headers.get(b"idempotency-key"))
        check_media_type(request_headers.get(b"content-type", ""))
        data = parse_json(await _read_body(receive))
        posted = await remote_post.accept(ctx, partner_id=partner.id, ids=ids, key=key, data=data)
        body, extra = remote_post.answer(self._base_url(scope), ids, posted)
        return 202, body, extra or {}
