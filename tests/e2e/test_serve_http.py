"""What a real ``keyfob serve`` does at the HTTP level, run as a user runs it.

One ``keyfob serve`` process (plain HTTP, SQLite, one simulated car) for the module: the limits
of decision 33 that only the server's own HTTP protocol can hold (a request head above 16 KiB
is answered 431 before the rest of it is read), the body limit through the real server, and
the API documentation pages, which must work without internet access: their scripts and
styles come from keyfob itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

LOOPBACK = "127.0.0.1"
HEAD_LIMIT = 16 * 1024


@dataclass(frozen=True)
class Served:
    port: int
    demo: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("serve")
    port = free_port()
    command = [
        *(sys.executable, "-m", "keyfob.cli.main", "serve", "--port", str(port)),
        *("--db", f"sqlite:///{workdir / 'keyfob.db'}", "--vehicles", "1"),
        *("--credentials-file", str(workdir / "demo.json")),
    ]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env={**inherited, "KEYFOB_SIM_SPEED": "0"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_served(process, port, log)
        yield Served(port, json.loads((workdir / "demo.json").read_text()))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_served(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"keyfob serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://{LOOPBACK}:{port}/health").status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"keyfob serve did not answer within 60 s:\n{log.read_text()[-3000:]}")


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; everything the server answers until it closes
    (or for 10 s)."""
    answer = b""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(request)
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
                if b"connection: close" not in answer.lower():
                    head, _, body = answer.partition(b"\r\n\r\n")
                    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
                    if length and len(body) >= int(length.group(1)):
                        break
    return answer


def status_and_body(answer: bytes) -> tuple[int, bytes, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


def test_a_request_head_above_16_kib_is_answered_431_before_it_ends(served: Served) -> None:
    # The head never ends (no blank line): only the server's own limit can answer it.
    unfinished = b"GET /health HTTP/1.1\r\nHost: keyfob\r\nX-Pad: " + b"a" * (HEAD_LIMIT + 4096)
    status, head, body = status_and_body(exchange(served.port, unfinished))
    assert status == 431, (head, body)
    assert b"connection: close" in head
    error = json.loads(body)
    assert error["code"] == 43100
    assert sorted(error) == ["code", "message", "timestamp", "uuid"]
    # Many headers add up the same way as one long one.
    many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 100) for i in range(200))
    status, _, _ = status_and_body(
        exchange(served.port, b"GET /health HTTP/1.1\r\nHost: keyfob\r\n" + many + b"\r\n")
    )
    assert status == 431
    # A head just within the limit is served, and the server is still there.
    fits = b"GET /health HTTP/1.1\r\nHost: keyfob\r\nConnection: close\r\nX-Pad: "
    fits += b"c" * (HEAD_LIMIT - len(fits) - 4) + b"\r\n\r\n"
    assert len(fits) == HEAD_LIMIT
    status, _, body = status_and_body(exchange(served.port, fits))
    assert status == 200, body


def fleet_client(served: Served) -> httpx.Client:
    partner = served.demo["partner"]
    return httpx.Client(
        base_url=served.demo["baseUrl"],
        auth=(partner["login"], partner["password"]),
        params={"client_id": partner["clientId"]},
        timeout=30,
    )


def test_a_chunked_upload_of_20_mb_is_refused_413_through_the_server(served: Served) -> None:
    sent = 0

    def upload() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"label": "'
        for _ in range(320):
            sent += 65536
            yield b"x" * 65536
        yield b'"}'

    with fleet_client(served) as client:
        path = f"/fleets/{served.demo['fleetId']}/remote/callbacks"
        answer = client.post(path, content=upload(), headers={"content-type": "application/json"})
        assert answer.status_code == 413, answer.text
        assert answer.json()["code"] == 41300
        listed = client.get(path)
        assert listed.status_code == 200
        assert listed.json()["total"] == 0


def referenced(page: str) -> list[str]:
    """Every URL a documentation page loads: src and href attributes, and the script's
    ``url:`` / ``spec-url`` of the OpenAPI document."""
    found = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", page)
    found += re.findall(r"""url:\s*["']([^"']+)["']""", page)
    return found


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_documentation_loads_nothing_from_elsewhere(served: Served, page: str) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        answer = client.get(page)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        urls = referenced(answer.text)
        assert any(u.endswith(".js") for u in urls), urls
        assert "/openapi.json" in urls
        elsewhere = [u for u in urls if "//" in u] + re.findall(r"https?://\S+", answer.text)
        assert not elsewhere, f"{page} loads from other hosts: {elsewhere}"
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url
            if url.endswith(".js"):
                assert "javascript" in asset.headers["content-type"], url
            if url.endswith(".css"):
                assert asset.headers["content-type"].startswith("text/css"), url


@pytest.mark.browser
@pytest.mark.parametrize(
    ("page", "rendered"),
    [("/docs", ".swagger-ui .opblock"), ("/redoc", "[data-section-id^='operation']")],
)
async def test_the_api_documentation_renders_in_a_browser_without_internet(
    served: Served, page: str, rendered: str
) -> None:
    """In chromium, with every request to another host refused: the page still draws the
    operations (Swagger UI's blocks, ReDoc's sections) from keyfob's own assets. ReDoc's
    bundle still asks its vendor's site for the small logo of its footer (an image, refused
    here, which the page does without); no script or style comes from elsewhere."""
    from browser_support import launch_chromium, same_origin

    elsewhere: list[str] = []
    async with launch_chromium() as browser:
        tab = await browser.new_page()

        async def only_keyfob(route: Any) -> None:
            if same_origin(route.request.url, served.url):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await tab.route("**/*", only_keyfob)
        await tab.goto(served.url + page)
        await tab.wait_for_selector(rendered, timeout=30_000)
    needed = [url for url in elsewhere if not url.endswith(".svg")]
    assert not needed, f"{page} asked other hosts for {elsewhere}"
