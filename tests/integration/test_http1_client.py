"""The webhook client against raw TCP servers that misbehave on purpose: answers without a
length, chunked, too long, cut short or not HTTP at all, and kept-alive connections the peer
closes under us."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from keyfob.callbacks.targets import TargetPolicy
from keyfob.notifications.http1 import Http1Client, Origin
from keyfob.notifications.resolver import SafeResolver
from keyfob.notifications.sender import WebhookSender

BODY = b'{"events":[]}'
LOCAL = TargetPolicy(allow_private=True)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def on_both_loops(scenario: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[str], None]:
    """Runs the scenario on asyncio's loop and on uvloop's, whose transports differ
    (``keyfob serve`` runs on uvloop)."""

    @pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
    def test(loop: str) -> None:
        (uvloop.run if loop == "uvloop" else asyncio.run)(scenario())

    test.__name__ = scenario.__name__
    test.__doc__ = scenario.__doc__
    return test


Script = Callable[["Peer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Peer:
    """A server that runs ``script`` on each connection and counts what it saw."""

    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed_by_client: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One whole request (headers and a ``Content-Length`` body), or None at the end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


@asynccontextmanager
async def peer(script: Script) -> AsyncIterator[Peer]:
    state = Peer()
    handlers: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await script(state, reader, writer)
        except ConnectionError:
            pass  # the client hung up on a script still writing
        finally:
            writer.close()

    def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.create_task(run(reader, writer)))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@asynccontextmanager
async def sender(**options: float) -> AsyncIterator[WebhookSender]:
    client = WebhookSender(LOCAL, timeout=options.pop("timeout", 2.0), **options)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        await client.close()


async def post(client: WebhookSender, url: str) -> tuple[int | None, str | None, str | None]:
    outcome = await client.post(url, query=[], headers={}, body=BODY)
    return outcome.status_code, outcome.error_class, outcome.response_excerpt


def answering(answer: bytes, *, once: bool = False, hold_s: float = 0.0) -> Script:
    """A script that answers every request (or the first, then holds the connection
    ``hold_s`` and closes it) with ``answer``."""

    async def script(
        state: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while await state.read_request(reader) is not None:
            writer.write(answer)
            await writer.drain()
            if once:
                await asyncio.sleep(hold_s)
                return

    return script


answer_all = answering(OK)


@on_both_loops
async def test_a_kept_alive_connection_closed_by_the_peer_is_replaced_without_a_lost_attempt() -> (
    None
):
    async def drop_the_second(
        state: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        served = 0
        while await state.read_request(reader) is not None:
            served += 1
            if state.connections == 1 and served == 2:
                return  # closed under a request, as an idle time-out racing it would
            writer.write(OK)
            await writer.drain()

    async with peer(drop_the_second) as server, sender() as client:
        assert await post(client, server.url) == (200, None, "ok")
        assert await post(client, server.url) == (200, None, "ok")
    assert server.connections == 2
    assert len(server.requests) == 3


@on_both_loops
async def test_an_answer_cut_short_is_not_sent_again() -> None:
    async with peer(answering(b"HTTP/1.1 2", once=True)) as server, sender() as client:
        status, error, _ = await post(client, server.url)
    assert (status, error) == (None, "connect")
    assert len(server.requests) == 1


@on_both_loops
async def test_an_answer_without_a_length_is_read_to_the_end_of_the_connection() -> None:
    until_close = answering(b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\nstored", once=True)
    async with peer(until_close) as server, sender() as client:
        assert await post(client, server.url) == (201, None, "stored")
        assert await post(client, server.url) == (201, None, "stored")
    assert server.connections == 2


@on_both_loops
async def test_a_chunked_answer_is_read_and_its_connection_kept() -> None:
    chunked = answering(
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )

    async with peer(chunked) as server, sender() as client:
        for _ in range(3):
            assert await post(client, server.url) == (202, None, "abcdefg")
    assert server.connections == 1


@on_both_loops
async def test_a_long_answer_is_cut_at_the_excerpt_and_its_connection_closed() -> None:
    # More than one read can bring: the client stops reading after the excerpt.
    long = answering(b"HTTP/1.1 500 Oops\r\nContent-Length: 4000000\r\n\r\n" + b"x" * 4_000_000)
    async with peer(long) as server, sender() as client:
        for _ in range(2):
            status, error, excerpt = await post(client, server.url)
            assert (status, error, excerpt) == (500, "http_500", "x" * 2048)
    assert server.connections == 2


@on_both_loops
async def test_an_answer_that_is_not_http_is_a_protocol_error() -> None:
    async with (
        peer(answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", once=True, hold_s=1)) as server,
        sender() as client,
    ):
        status, error, _ = await post(client, server.url)
    assert (status, error) == (None, "protocol")


@on_both_loops
async def test_a_header_that_would_split_the_request_is_not_sent() -> None:
    async with peer(answer_all) as server, sender() as client:
        for headers in ({"X-Token": "a\r\nX-Admin: yes"}, {"Bad Name": "v"}, {"X:y": "v"}):
            outcome = await client.post(server.url, query=[], headers=headers, body=BODY)
            assert (outcome.delivered, outcome.error_class) == (False, "invalid_request")
    assert server.requests == []


@on_both_loops
async def test_the_request_is_framed_by_the_sender_whatever_the_headers_say() -> None:
    async with peer(answer_all) as server, sender() as client:
        outcome = await client.post(
            server.url + "?a=1",
            query=[("vin", "VF3 1")],
            headers={"Content-Length": "1", "Transfer-Encoding": "chunked", "X-Key": "k"},
            body=BODY,
        )
    assert outcome.delivered
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hook?a=1&vin=VF3+1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "X-Key: k" in lines
    assert "Content-Length: 13" in lines
    assert not any(line.lower().startswith("transfer-encoding") for line in lines)
    assert body == BODY


@on_both_loops
async def test_a_name_that_does_not_resolve_is_a_dns_error() -> None:
    class NoDNS:
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[object]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async def close(self) -> None:
            return None

    client = WebhookSender(LOCAL, resolver=NoDNS())  # type: ignore[arg-type]
    try:
        outcome = await client.post("http://hooks.invalid/x", query=[], headers={}, body=BODY)
    finally:
        await client.close()
    assert (outcome.delivered, outcome.error_class) == (False, "dns")
    assert "hooks.invalid" in (outcome.detail or "")


@on_both_loops
async def test_idle_connections_are_closed_after_the_idle_time() -> None:
    ended = asyncio.Event()

    async def one_connection(
        state: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await answer_all(state, reader, writer)
        ended.set()  # the client closed its side

    async with peer(one_connection) as server:
        client = Http1Client(SafeResolver(LOCAL), excerpt_bytes=2048, idle_s=0.1)
        origin = Origin(https=False, host="127.0.0.1", port=server.port, literal=True)
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        try:
            assert (await client.post(origin, request)).status == 200
            await asyncio.wait_for(ended.wait(), 2)
        finally:
            await client.close()
