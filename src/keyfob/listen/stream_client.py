"""``keyfob listen --stream URL``: dial a callback's event stream and print it as webhooks print.

For a consumer with no address the platform can reach: it dials out. The URL is a stream of
either face (``.../callbacks/{cbid}/events/stream``, Server-Sent Events; or ``ws://``/``wss://``
``.../events/ws``), with the caller's credentials: ``--login``/``--password`` (HTTP Basic, the
fleet face) or ``--token`` and ``--realm`` (the user face), and ``--client-id``. Whenever the
stream ends (a restart, a cut-off for reading too slowly, a dropped connection) it dials again
from the last id it printed, so nothing is missed; an answer other than 200 ends it.

Streams are not signed (the connection is authenticated instead), so there is nothing for
``--secret`` to check here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock, utcnow
from keyfob.listen.receiver import describe, paint

RETRY_S = 1.0


@dataclass(frozen=True)
class Credentials:
    login: str | None = None
    password: str | None = None
    token: str | None = None
    realm: str | None = None
    client_id: str | None = None

    def headers(self) -> dict[str, str]:
        found = {}
        if self.token:
            found["Authorization"] = f"Bearer {self.token}"
        elif self.login is not None:
            found["Authorization"] = aiohttp.BasicAuth(self.login, self.password or "").encode()
        if self.realm:
            found["x-introspect-realm"] = self.realm
        return found


class StreamRefused(KeyfobError):
    """The server answered the dial with an error: retrying would not help."""


def with_query(url: str, **extra: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in extra]
    query += [(k, v) for k, v in extra.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _sse(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], after: str | None
) -> AsyncIterator[tuple[str | None, Any]]:
    """(id, data) of each notification of one connection; ends when the stream does."""
    if after:
        headers = {**headers, "Last-Event-ID": after}
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            text = (await response.text())[:300]
            raise StreamRefused(ErrorCode.BAD_REQUEST, f"{response.status} {text}")
        fields: dict[str, str] = {}
        async for raw in response.content:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line:
                if not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                continue
            if fields.get("event", "message") == "notification" and "data" in fields:
                yield fields.get("id"), json.loads(fields["data"])
            fields = {}


async def _ws(
    url: str, headers: dict[str, str], after: str | None
) -> AsyncIterator[tuple[str | None, Any]]:
    try:
        async with connect(with_query(url, after=after), additional_headers=headers) as ws:
            try:
                async for frame in ws:
                    item = json.loads(frame)
                    yield item["id"], item["data"]
            except ConnectionClosed:
                return
    except InvalidStatus as refused:
        response = refused.response
        text = response.body.decode(errors="replace")[:300] if response.body else ""
        raise StreamRefused(ErrorCode.BAD_REQUEST, f"{response.status_code} {text}") from None


async def follow(
    url: str,
    credentials: Credentials,
    say: Callable[[str], None],
    *,
    count: int | None = None,
    after: str | None = None,
    clock: Clock = utcnow,
) -> str | None:
    """Print notifications until ``count`` of them (forever without); the last id printed."""
    url = with_query(url, client_id=credentials.client_id)
    websocket = urlsplit(url).scheme in {"ws", "wss"}
    headers = credentials.headers()
    printed = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10)) as session:
        while count is None or printed < count:
            try:
                feed = _ws(url, headers, after) if websocket else _sse(session, url, headers, after)
                async for event_id, data in feed:
                    stamp = clock().astimezone().strftime("%H:%M:%S")
                    for line in describe(json.dumps(data).encode()):
                        say(f"{stamp}  {line}")
                    after, printed = event_id or after, printed + 1
                    if count is not None and printed >= count:
                        return after
            except (aiohttp.ClientError, OSError, TimeoutError) as problem:
                say(f"!! stream interrupted ({type(problem).__name__}); dialling again")
            await asyncio.sleep(RETRY_S)
    return after


def run(
    url: str,
    credentials: Credentials,
    *,
    count: int | None = None,
    after: str | None = None,
    out: TextIO,
    colour: bool = False,
) -> None:
    def say(text: str) -> None:
        out.write(paint(text, colour) + "\n")
        out.flush()

    say(f"following {url} (resumes from the last event on reconnect)")
    asyncio.run(follow(url, credentials, say, count=count, after=after))
