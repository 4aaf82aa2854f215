"""A local stand-in of Google's OAuth token endpoint and the FCM HTTP v1 send endpoint.

It checks what the real ones would: the token request is a JWT-bearer grant whose assertion is
signed by the service account's key and names the FCM scope and this token endpoint; a send
carries a bearer this endpoint issued and a ``message`` of the v1 shape (a token, string-only
``data``). Tokens listed in ``unregistered`` are answered as FCM answers a device that is gone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

PROJECT = "keyfob-test"
CLIENT_EMAIL = "keyfob@keyfob-test.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_GONE = {
    "error": {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
        "details": [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED",
            }
        ],
    }
}


@dataclass
class Fcm:
    url: str = ""
    key_file: Path = Path()
    token_requests: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every accepted ``message``, in order."""
    refused: list[str] = field(default_factory=list)
    """Why each refused request was refused."""
    unregistered: set[str] = field(default_factory=set)
    issued: set[str] = field(default_factory=set)


def _check_message(body: Any) -> str | None:
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict) or set(body) != {"message"}:
        return "the body is not {message}"
    if not isinstance(message.get("token"), str):
        return "message.token is missing"
    data = message.get("data")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "message.data must map strings to strings"
    allowed = {"token", "data", "notification", "android", "apns"}
    if not set(message) <= allowed:
        return f"unknown members {set(message) - allowed}"
    return None


@asynccontextmanager
async def fcm_stand_in(folder: Path) -> AsyncIterator[Fcm]:
    key = RSAKey.generate_key(2048)
    public = RSAKey.import_key(key.as_dict(private=False))
    found = Fcm()

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        claims: dict[str, Any] = {}
        try:
            assert form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            decoded = jwt.decode(str(form.get("assertion")), public, algorithms=["RS256"])
            claims = decoded.claims
            assert decoded.header.get("kid") == "key-1"
        except Exception as error:
            found.refused.append(f"token: {error!r}")
            return web.json_response({"error": "invalid_grant"}, status=400)
        if (claims.get("iss"), claims.get("scope"), claims.get("aud")) != (
            CLIENT_EMAIL,
            SCOPE,
            f"{found.url}/token",
        ):
            found.refused.append(f"token claims {claims}")
            return web.json_response({"error": "invalid_grant"}, status=400)
        found.token_requests += 1
        access = f"ya29.stand-in-{found.token_requests}"
        found.issued.add(access)
        return web.json_response(
            {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}
        )

    async def send(request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in found.issued:
            found.refused.append("send: unknown bearer")
            return web.json_response(
                {"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status=401
            )
        body = json.loads(await request.read())
        why = _check_message(body)
        if why is not None:
            found.refused.append(f"send: {why}")
            return web.json_response({"error": {"code": 400, "message": why}}, status=400)
        if body["message"]["token"] in found.unregistered:
            return web.json_response(_GONE, status=404)
        found.sent.append(body["message"])
        return web.json_response({"name": f"projects/{PROJECT}/messages/{len(found.sent)}"})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post(f"/v1/projects/{PROJECT}/messages:send", send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}"
    found.key_file = folder / "service-account.json"
    found.key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "key-1",
                "private_key": key.as_pem(private=True).decode(),
                "client_email": CLIENT_EMAIL,
                "token_uri": f"{found.url}/token",
            }
        )
    )
    try:
        yield found
    finally:
        await runner.cleanup()
