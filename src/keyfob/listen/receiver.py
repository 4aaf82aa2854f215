"""A local webhook receiver that prints each notification as it arrives.

Developers point a callback at it to see what keyfob sends without writing a server first. It can
check the signatures (``--secret``, repeatable: any one of the secrets verifies, as during a
rotation) and answer 500 to a chosen share of requests (``--fail-rate``) so retries can be
watched happening; a retried delivery (a ``webhook-id`` seen before) is marked with its attempt
number. Outcomes are coloured on a terminal, unless ``NO_COLOR`` is set. It reads both payload
families: B2B ``RemoteEvents`` (one line per event of a batch) and B2C ``Message`` (alone or in
an array, its sequence numbers taken from the ``keyfob-sequence`` header since the body carries
none).
It also serves as an app's OAuth redirect URI: a browser landing on it with ``?code=`` gets a
page with the code, and the terminal prints it, ready for the token request.

    12:00:01  9f3c…  VF3ABCDE0FG123456  Doors  Pending/Accepted  #1
    12:00:09  9f3c…  VF3ABCDE0FG123456  Doors  Done/Failed (DoorsOpen)  #2  attempt 2
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from aiohttp import web

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock, utcnow
from keyfob.notifications.signing import InvalidSignature, secret_key, verify

DEFAULT_PORT = 8787
REMEMBERED_IDS = 10_000
"""How many ``webhook-id`` values are remembered to number attempts."""

_RESET = "\x1b[0m"
_COLOURS = {"ok": "\x1b[32m", "bad": "\x1b[31m", "warn": "\x1b[33m", "dim": "\x1b[2m"}


def use_colour(out: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return out.isatty() and not os.environ.get("NO_COLOR")


def paint(line: str, colour: bool) -> str:
    """``line`` coloured by what it reports: Done/Success green, failures and refusals red,
    retries and deliberate 500s yellow, progress dim."""
    if not colour:
        return line
    if "!!" in line or "/Failed" in line or "Done/Timeout" in line:
        tone = "bad"
    elif "-> answered 500" in line or "attempt " in line:
        tone = "warn"
    elif "Done/" in line:
        tone = "ok"
    elif "Pending/" in line:
        tone = "dim"
    else:
        return line
    return f"{_COLOURS[tone]}{line}{_RESET}"


class _Attempts:
    """The attempt number of a delivery: how often its ``webhook-id`` has arrived."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()

    def count(self, message_id: str | None) -> int:
        if not message_id:
            return 1
        number = self._seen.pop(message_id, 0) + 1
        self._seen[message_id] = number
        if len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        return number


def _verified(secrets: Sequence[str], headers: Any, body: bytes, now: Any) -> str | None:
    """None when one of ``secrets`` verifies the signature, else why the first did not."""
    problems = []
    for secret in secrets:
        try:
            verify(secret, headers, body, now=now)
            return None
        except InvalidSignature as problem:
            problems.append(str(problem))
    return (
        problems[0] if len(secrets) == 1 else f"none of the {len(secrets)} secrets: {problems[0]}"
    )


def build_app(
    secret: str | Sequence[str] | None,
    fail_rate: float,
    raw: bool,
    out: TextIO,
    seed: int | None,
    *,
    clock: Clock = utcnow,
    colour: bool = False,
) -> web.Application:
    """The receiver as an aiohttp application that answers POST on every path.

    ``secret``: one secret or several, any of which verifies; None checks nothing."""
    secrets = [secret] if isinstance(secret, str) else list(secret or [])
    for each in secrets:
        secret_key(each)
    if not 0.0 <= fail_rate <= 1.0:
        raise KeyfobError(
            ErrorCode.BAD_REQUEST, f"--fail-rate must be between 0 and 1, got {fail_rate}"
        )
    # Simulated failures only need to be repeatable, not unpredictable.
    chance = random.Random(seed)  # noqa: S311

    attempts = _Attempts()

    def say(text: str) -> None:
        out.write(paint(text, colour) + "\n")
        out.flush()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = clock().astimezone().strftime("%H:%M:%S")
        attempt = attempts.count(request.headers.get("webhook-id"))
        retried = f"  attempt {attempt}" if attempt > 1 else ""
        if secrets:
            problem = _verified(secrets, request.headers, body, clock())
            if problem is not None:
                say(f"{stamp}  !! {request.path}: signature rejected ({problem}); answered 401")
                return web.Response(status=401, text="invalid signature\n")
        if raw:
            say(body.decode("utf-8", errors="replace"))
        else:
            for line in describe(body, sequences=request.headers.get("keyfob-sequence")):
                say(f"{stamp}  {line}{retried}")
        if fail_rate > 0 and chance.random() < fail_rate:
            say(f"{stamp}  -> answered 500 on purpose (--fail-rate {fail_rate:g})")
            return web.Response(status=500, text="simulated failure\n")
        return web.Response(status=200, text="ok\n")

    async def redirected(request: web.Request) -> web.Response:
        stamp = clock().astimezone().strftime("%H:%M:%S")
        query = request.query
        if "code" in query:
            say(f"{stamp}  authorization code {query['code']}  (state {query.get('state', '-')})")
            text = f"Signed in. Authorization code:\n\n{query['code']}\n\nYou can close this page."
        elif "error" in query:
            detail = query.get("error_description", "")
            say(f"{stamp}  authorization refused: {query['error']} {detail}")
            text = f"Authorization refused: {query['error']}\n"
        else:
            return web.Response(status=404, text="keyfob listen takes POSTed notifications\n")
        return web.Response(status=200, text=text, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receive)
    app.router.add_route("GET", "/{tail:.*}", redirected)
    return app


def describe(body: bytes, *, sequences: str | None = None) -> list[str]:
    """One readable line per event in a notification body, or a warning line.

    ``sequences`` is the user face's ``keyfob-sequence`` header: one number per ``Message``,
    in the order of the body's array.
    """
    try:
        document = json.loads(body)
    except ValueError:
        return [f"?? body is not JSON ({len(body)} bytes)"]
    numbers = iter((sequences or "").split(",") if sequences else ())
    lines = list(_lines(document, numbers))
    return lines or [f"?? not a notification: {body[:200].decode('utf-8', errors='replace')}"]


def _lines(document: Any, numbers: Iterator[str]) -> Iterator[str]:
    if isinstance(document, list):
        for item in document:
            yield from _lines(item, numbers)
        return
    if not isinstance(document, dict):
        return
    events = document.get("events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, dict):
                yield _event_line(event, vin=event.get("vin"))
    remote_event = document.get("remoteEvent")
    if isinstance(remote_event, dict):
        number = next(numbers, "").strip()
        line = _event_line(remote_event, vin=None)
        yield f"{line}  #{number}" if number.isdigit() else line
    monitor_event = document.get("monitorEvent")
    if isinstance(monitor_event, dict):
        yield f"monitor {monitor_event.get('monitorId', '?')}"


def _event_line(event: dict[str, Any], *, vin: object) -> str:
    status = event.get("eventStatus")
    status = status if isinstance(status, dict) else {}
    text = f"{status.get('type', '?')}/{status.get('status', '?')}"
    if "failureCause" in status:
        text += f" ({status['failureCause']})"
    if "feedbackDetail" in status:
        text += f" [{status['feedbackDetail']}]"
    if "sequence" in event:
        text += f"  #{event['sequence']}"
    parts = [event.get("remoteActionId", "?"), vin or "-", event.get("remoteType", "?"), text]
    return "  ".join(str(part) for part in parts)


def run(
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    *,
    secret: str | Sequence[str] | None = None,
    fail_rate: float = 0.0,
    raw: bool = False,
    seed: int | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C), printing to ``out`` (standard output by default)."""
    stream = out or sys.stdout
    app = build_app(secret, fail_rate, raw, stream, seed, colour=use_colour(stream))
    checks = "signatures checked" if secret else "signatures not checked"
    stream.write(f"listening on http://{host}:{port}/ ({checks}, fail rate {fail_rate:g})\n")
    stream.flush()
    web.run_app(app, host=host, port=port, print=None, access_log=None)
