"""The body limit of decision 33 on every route, enforced while the body arrives.

A route that reads its body whole (Starlette's ``Request.body``) would otherwise hold a 20 MB
upload in memory before its parser could refuse it. ``BodyLimit`` is the outermost middleware:

    Content-Length above MAX_BODY ─► 413 at once (before routing and authentication)
    chunked body (no Content-Length) ─► receive() counts; past MAX_BODY it raises the 413
    Content-Length within MAX_BODY ─► untouched (the server reads no more than declared)

The 413 closes the connection, so the rest of the upload is not read. The request line and
headers are limited one layer down, by the server's protocol (``runtime.http_server``), since
they are in memory before any ASGI code runs.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyfob.api.errors import error_response
from keyfob.api.http import MAX_BODY, too_large


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            refusal = too_large()
            response = error_response(refusal.error, refusal.message, refusal.headers)
            await response(scope, receive, send)
            return
        if declared is not None or not chunked:
            await self.app(scope, receive, send)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > MAX_BODY:
                raise too_large()
            return message

        await self.app(scope, counted, send)
