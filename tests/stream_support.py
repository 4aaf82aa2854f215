"""A real server for the event stream tests, and a small Server-Sent Events reader.

``serving`` runs an app (its lifespan included) under uvicorn with WebSockets on a loopback
socket, so a test can stop it and start another app on the same port and database: a restart.
``SseReader`` reads ``text/event-stream`` from a real connection, event by event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from conftest import Tenant, make_settings
from keyfob.api.app import create_app
from keyfob.api.streams import Server
from keyfob.kit.clock import FakeClock
from keyfob.notifications.broadcast import StreamOptions
from keyfob.store.engine import Database


def loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def make_app(db: Database, clock: FakeClock, streams: StreamOptions | None = None) -> Any:
    return create_app(
        make_settings(db.url, delivery={"allow_private_webhooks": True}),
        database=db,
        clock=clock,
        announce=lambda _: None,
        streams=streams,
    )


@contextlib.asynccontextmanager
async def serving(app: Any, port: int = 0) -> AsyncIterator[str]:
    """``app`` with its lifespan, over real HTTP and WebSockets; yields the base URL."""
    sock = loopback() if port == 0 else _bound(port)
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, ws="auto")
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn under test")
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        host, bound = sock.getsockname()[:2]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: str
    fields: dict[str, str] = field(default_factory=dict)
    """Every field of the event, the signature's (``webhook-*``) included."""

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseReader:
    """Parses events off a streamed httpx response."""

    response: httpx.Response
    _lines: AsyncIterator[str] | None = None
    comments: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 10.0) -> SseEvent | None:
        """The next event with data (``None`` once the stream ends)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if not line:
                    if "data" in fields:
                        return SseEvent(
                            fields.get("id"), fields.get("event", "message"), fields["data"], fields
                        )
                    fields = {}
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        return None

    async def take(self, count: int, timeout: float = 10.0) -> list[SseEvent]:
        found = []
        while len(found) < count:
            event = await self.next(timeout)
            assert event is not None, f"the stream ended after {len(found)} of {count} events"
            found.append(event)
        return found


@contextlib.asynccontextmanager
async def sse(
    http: httpx.AsyncClient, url: str, last_event_id: str | None = None, **kwargs: Any
) -> AsyncIterator[SseReader]:
    headers = dict(kwargs.pop("headers", {}))
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with http.stream("GET", url, headers=headers, timeout=30, **kwargs) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response)


HOOK = "https://hooks.example.com/keyfob"


@dataclass
class Partner:
    tenant: Tenant
    http: httpx.AsyncClient
    """Over real HTTP: Basic credentials and client_id on every request."""

    def events(self, callback_id: str, tail: str = "") -> str:
        return f"{self.tenant.fleet}/remote/callbacks/{callback_id}/events{tail}"

    async def callback(self, attributes: list[dict[str, str]] | None = None) -> str:
        webhook: dict[str, Any] = {"target": HOOK, "name": "ops"}
        if attributes:
            webhook["attributes"] = attributes
        body = {"callback": {"webhook": webhook}, "remoteTypes": ["Doors", "Horn"]}
        answer = await self.http.post(f"{self.tenant.fleet}/remote/callbacks", json=body)
        assert answer.status_code == 200, answer.text
        callback_id: str = answer.json()["callbackId"]
        return callback_id

    async def remote(self, callback_id: str, motorization: str = "Electric") -> str:
        vehicle = self.tenant.vehicles[motorization].id
        path = f"{self.tenant.fleet}/vehicles/{vehicle}/callbacks/{callback_id}/remotes"
        answer = await self.http.post(path, json={"door": {"state": "Locked"}})
        assert answer.status_code == 202, answer.text
        remote_id: str = answer.json()["remoteActionId"]
        return remote_id


def partner_over(url: str, tenant: Tenant) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, auth=(tenant.login, tenant.password), params={"client_id": tenant.client_id}
    )
