"""Adds the partner's ``X-RateLimit-*`` headers to every answer, errors included.

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which costs a task per request): the
authentication dependency and the lean POST remote route (``api.lean``) leave the headers in
``scope["state"]["rate_headers"]``, and they are added when the response starts, whichever
handler produced it; headers the response already carries are kept.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RateLimitHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get("rate_headers")
                if extra:
                    headers = list(message.get("headers", ()))
                    present = {name.lower() for name, _ in headers}
                    for key, value in extra.items():
                        name = key.lower().encode("latin-1")
                        if name not in present:
                            headers.append((name, value.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
