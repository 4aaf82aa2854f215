"""The two outside processes of ``e2e.py``: a webhook receiver that records, and a load generator.

Both stamp time with ``time.monotonic()``: on Linux that is one clock for every process on the
machine, so "POST sent" (the generator) and "Done received" (the receiver) can be subtracted.

``python bench/e2e_parts.py receive PORT`` is the receiver. It answers every POST with 200 at
once, like a partner's fast webhook:

* ``POST /hook``: a keyfob notification body; each event is recorded as
  ``[remoteActionId, sequence, "Type/Status", arrived]``;
* ``POST /raw``: counted only (the raw HTTP loop of the same run);
* ``GET /count``: the number of Done events so far (the closed loop's feedback);
* ``GET /dump?from=N``: the recorded events from the N-th on, as JSON, ``PAGE`` at most.

``python bench/e2e_parts.py load OUT.json < plan.json`` is the load generator. Its modes:

* ``raw``: POSTs to one URL, ``concurrency`` in flight, for ``duration`` seconds;
* ``closed``: remotes, ``concurrency`` requests in flight but never more than ``window`` remotes
  accepted and not yet Done (it asks the receiver): what the system completes at saturation;
* ``paced``: remotes sent at a fixed ``rate`` whatever happens to them (an open loop).

It writes one JSON document to ``OUT.json``: for remotes, every accepted
``[remoteActionId, sent]`` and the count of answers by status.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import httptools
import orjson
from common import LOOPBACK, run_async

PAGE = 20_000
"""Events in one ``/dump`` answer: the caller asks again from where the page ended."""
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


# -- the receiver ------------------------------------------------------------------------------


class Book:
    """What the receiver has seen."""

    def __init__(self) -> None:
        self.events: list[list[Any]] = []
        self.done = 0
        self.raw = 0


class Receiver(asyncio.Protocol):
    def __init__(self, book: Book) -> None:
        self.book = book
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"POST":
            if self.url.startswith(b"/raw"):
                self.book.raw += 1
            else:
                self._record(b"".join(self.body))
            self.transport.write(_OK)
        else:
            self._answer(self._query())
        if not self.parser.should_keep_alive():
            self.transport.close()

    def _record(self, body: bytes) -> None:
        arrived, wall = time.monotonic(), time.time()
        document = orjson.loads(body)
        for event in document.get("events", ()):
            status = event["eventStatus"]
            kind = f"{status['type']}/{status['status']}"
            if "failureCause" in status:
                kind += f"/{status['failureCause']}"
            # How long after keyfob raised it (its eventDate) the event arrived: delivery alone.
            raised = datetime.fromisoformat(event["eventDate"]).timestamp()
            lag_ms = round((wall - raised) * 1000, 1)
            self.book.events.append(
                [event["remoteActionId"], event["sequence"], kind, arrived, lag_ms]
            )
            if status["type"] == "Done":
                self.book.done += 1

    def _query(self) -> bytes:
        if self.url.startswith(b"/count"):
            return str(self.book.done).encode()
        start = int(self.url.partition(b"from=")[2] or b"0")
        page = self.book.events[start : start + PAGE]
        return orjson.dumps({"events": page, "raw": self.book.raw})

    def _answer(self, payload: bytes) -> None:
        assert self.transport is not None
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        self.transport.write(head + payload)


async def receive(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    book = Book()
    server = await loop.create_server(lambda: Receiver(book), LOOPBACK, port, backlog=1024)
    async with server:
        await stop.wait()


# -- the load generator ------------------------------------------------------------------------


class Sender:
    """Posts remotes and keeps what came back."""

    def __init__(self, session: aiohttp.ClientSession, plan: dict[str, Any]) -> None:
        self.session = session
        self.requests: list[list[str]] = plan.get("requests", [])
        self.headers: dict[str, str] = plan.get("headers", {})
        self.accepted: list[list[Any]] = []
        self.answers: Counter[str] = Counter()
        self.answered_ms: list[float] = []
        self.next = 0

    async def post(self) -> None:
        url, body = self.requests[self.next % len(self.requests)]
        self.next += 1
        sent = time.monotonic()
        try:
            async with self.session.post(url, data=body, headers=self.headers) as answer:
                content = await answer.read()
                self.answers[str(answer.status)] += 1
                if answer.status == 202:
                    self.accepted.append([orjson.loads(content)["remoteActionId"], sent])
                    self.answered_ms.append((time.monotonic() - sent) * 1000)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self.answers[type(error).__name__] += 1

    def result(self) -> dict[str, Any]:
        ordered = sorted(self.answered_ms)
        p50 = ordered[len(ordered) // 2] if ordered else None
        p99 = ordered[int(len(ordered) * 0.99)] if ordered else None
        return {
            "accepted": self.accepted,
            "answers": dict(self.answers),
            "answer_p50_ms": p50,
            "answer_p99_ms": p99,
        }


async def raw(session: aiohttp.ClientSession, plan: dict[str, Any]) -> dict[str, Any]:
    done = 0
    start = time.monotonic()
    end = start + plan["duration"]

    async def slot() -> None:
        nonlocal done
        while time.monotonic() < end:
            async with session.post(plan["url"], data=b'{"raw":true}') as answer:
                await answer.read()
                done += answer.status == 200

    await asyncio.gather(*(slot() for _ in range(plan["concurrency"])))
    return {"requests": done, "rps": done / (time.monotonic() - start)}


async def closed(session: aiohttp.ClientSession, plan: dict[str, Any]) -> dict[str, Any]:
    sender = Sender(session, plan)
    end = time.monotonic() + plan["duration"]
    done = 0

    async def watch() -> None:
        nonlocal done
        while time.monotonic() < end:
            async with session.get(plan["count_url"]) as answer:
                done = int(await answer.read()) - plan["done_before"]
            await asyncio.sleep(0.005)

    async def slot() -> None:
        while time.monotonic() < end:
            if sender.next - done >= plan["window"]:
                await asyncio.sleep(0.002)
                continue
            await sender.post()

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(slot() for _ in range(plan["concurrency"])))
    await watcher
    return sender.result()


async def paced(session: aiohttp.ClientSession, plan: dict[str, Any]) -> dict[str, Any]:
    sender = Sender(session, plan)
    rate, count = plan["rate"], round(plan["rate"] * plan["duration"])
    start = time.monotonic()
    running: set[asyncio.Task[None]] = set()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(sender.post())
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    result = sender.result()
    result["sending_s"] = time.monotonic() - start
    return result


async def load(plan: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=plan.get("connections", 256))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        mode = {"raw": raw, "closed": closed, "paced": paced}[plan["mode"]]
        return await mode(session, plan)


USAGE = "e2e_parts.py receive PORT | e2e_parts.py load OUT.json < plan.json"

if __name__ == "__main__":
    match sys.argv[1:]:
        case ["receive", port]:
            run_async(receive(int(port)))
        case ["load", out]:
            # The result can be megabytes: a file, not a pipe, carries it back whole.
            Path(out).write_text(json.dumps(run_async(load(json.loads(sys.stdin.read())))))
            print('{"written": true}')
        case _:
            sys.exit(USAGE)
