"""``keyfob listen --stream URL``: dial a callback's event stream and print it as webhooks print.

For a consumer with no address the platform can reach: it dials out. The URL is a stream of
either face (``.../callbacks/{cbid}/events/stream``, Server-Sent Events; or ``ws://``/``wss://``
``.../events/ws``), with the caller's credentials: ``--login``/``--password`` (HTTP Basic, the
fleet face) or ``--token`` and ``--realm`` (the user face), and ``--client-id``. Whenever the
stream ends (a restart, a cut-off for reading too slowly, a dropped connection) it dials again
from the last id it printed, so nothing is missed; an answer other than 200 ends it.

With ``--secret`` (repeatable: any one verifies, as during a rotation) each event's signature
is checked as a webhook's is: SSE carries ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` as extra fields of the event, a WebSocket frame as its ``signature``
object, over the exact ``data`` bytes. A verified event is printed with ``signed``; a bad or
missing signature is printed as ``!! ... signature rejected (why)`` before the event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock, utcnow
from keyfob.listen.receiver import _verified, describe, paint
from keyfob.notifications.signing import secret_key

RETRY_S = 1.0
_SIGNED = ("webhook-id", "webhook-timestamp", "webhook-signature")
_FRAME_HEAD = len('{"id":"') + 32 + len('","data":')

Event = tuple[str | None, bytes, dict[str, str]]
"""An event's id, its exact ``data`` bytes, and its signature values (empty when unsigned)."""


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
) -> AsyncIterator[Event]:
    """Each notification of one connection; ends when the stream does."""
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
                signature = {k: fields[k] for k in _SIGNED if k in fields}
                yield fields.get("id"), fields["data"].encode(), signature
            fields = {}


def _frame(text: str) -> Event:
    """A frame's parts; ``data``'s bytes are cut out as sent, since they are what is signed."""
    item: dict[str, Any] = json.loads(text)
    signature = item.get("signature") or {}
    end = text.rfind(',"signature":') if signature else len(text) - 1
    return item["id"], text[_FRAME_HEAD:end].encode(), signature


async def _ws(url: str, headers: dict[str, str], after: str | None) -> AsyncIterator[Event]:
    try:
        async with connect(with_query(url, after=after), additional_headers=headers) as ws:
            try:
                async for frame in ws:
                    yield _frame(frame if isinstance(frame, str) else frame.decode())
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
    secrets: Sequence[str] = (),
    clock: Clock = utcnow,
) -> str | None:
    """Print notifications until ``count`` of them (forever without); the last id printed.

    ``secrets``: check each event's signature, any one of them verifying."""
    for each in secrets:
        secret_key(each)
    url = with_query(url, client_id=credentials.client_id)
    websocket = urlsplit(url).scheme in {"ws", "wss"}
    headers = credentials.headers()
    printed = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10)) as session:
        while count is None or printed < count:
            try:
                feed = _ws(url, headers, after) if websocket else _sse(session, url, headers, after)
                async for event_id, data, signature in feed:
                    stamp = clock().astimezone().strftime("%H:%M:%S")
                    mark = ""
                    if secrets:
                        problem = _verified(secrets, signature, data, clock())
                        if problem is None:
                            mark = "  signed"
                        else:
                            say(f"{stamp}  !! {event_id}: signature rejected ({problem})")
                    for line in describe(data):
                        say(f"{stamp}  {line}{mark}")
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
    secrets: Sequence[str] = (),
    out: TextIO,
    colour: bool = False,
) -> None:
    def say(text: str) -> None:
        out.write(paint(text, colour) + "\n")
        out.flush()

    checks = "signatures checked" if secrets else "signatures not checked"
    say(f"following {url} ({checks}; resumes from the last event on reconnect)")
    asyncio.run(follow(url, credentials, say, count=count, after=after, secrets=secrets))
