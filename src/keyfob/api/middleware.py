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
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    headers = list(message.get("headers", []))
                    headers.extend(
                        (k.lower().encode(), v.encode())
                        for k, v in extra.items()
                        if k.lower().encode() not in present
                    )
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
