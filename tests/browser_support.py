"""A real server and a real browser for tests of what keyfob shows people.

``serve`` runs an ASGI app under uvicorn on a loopback port bound before the app is built (so
its settings can name its own URL); ``callback_receiver`` is a tiny HTTP server that records
the requests it gets, for a redirect URI a browser must really land on; ``launch_chromium``
drives Debian's ``chromium`` package through Playwright's ``executable_path``: Playwright's
own browser downloads are not used (``scripts/test`` installs the package when it is missing).
A missing browser fails the test: it is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright

LOOPBACK = "127.0.0.1"


def loopback_socket() -> socket.socket:
    """A listening-ready TCP socket on a free loopback port (the kernel picks it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve ``app`` (its lifespan already running) over real HTTP; yields the base URL."""
    sock = sock or loopback_socket()
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn under test")
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Receiver:
    """What a loopback callback server was asked: one request target per request."""

    base_url: str
    targets: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def callback_receiver(
    body: bytes = b"Signed in. You can close this page.",
) -> AsyncIterator[Receiver]:
    """An HTTP server on a free loopback port that answers every GET with 200 ``body``."""
    sock = loopback_socket()
    receiver = Receiver(url_of(sock))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            _, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            receiver.targets.append(target)
            receiver.arrived.set()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, sock=sock)
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


def chromium_path() -> str:
    """Debian's chromium (``KEYFOB_CHROMIUM`` may name another build of it)."""
    found = os.environ.get("KEYFOB_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("chromium is not installed: run scripts/test, or apt-get install chromium")
    return found


@contextlib.asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Headless chromium under Playwright, closed afterwards."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


def same_origin(url: str, base_url: str) -> bool:
    one, two = urlsplit(url), urlsplit(base_url)
    return (one.scheme, one.netloc) == (two.scheme, two.netloc)
