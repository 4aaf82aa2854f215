"""``keyfob listen`` as a developer runs it: several ``--secret`` (any one verifies, as while a
callback's secret is rotated), attempt numbers on retried deliveries, and colour only on a
terminal and never under ``NO_COLOR``. The real command, as a subprocess, on a free port."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from keyfob.notifications.payload import EventRecord, build_remote_events, encode
from keyfob.notifications.signing import new_secret, sign

KEYFOB = str(Path(sys.executable).with_name("keyfob"))
GREEN, RED = "\x1b[32m", "\x1b[31m"

BODY = encode(
    build_remote_events(
        "cb",
        [],
        [
            EventRecord(
                event_id=f"{1:032x}",
                remote_id="0f9a6c2e5b7d4e1f8a3b2c1d0e9f8a7b",
                seq=1,
                vin="VF3ABCDE0FG123456",
                event_date=datetime(2026, 3, 1, 8, 0, 1, tzinfo=UTC),
                remote_type="Doors",
                event_type="Done",
                status="Success",
                failure_cause=None,
            )
        ],
    )
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Listener:
    def __init__(self, port: int, read: int) -> None:
        self.url = f"http://127.0.0.1:{port}/keyfob"
        self._read = read
        self._buffer = b""

    def post(self, message_id: str, secret: str) -> int:
        headers = sign([secret], message_id, int(time.time()), BODY)
        return httpx.post(self.url, content=BODY, headers=headers, timeout=5).status_code

    def lines(self, count: int) -> list[str]:
        deadline = time.monotonic() + 10
        while self._buffer.count(b"\n") < count and time.monotonic() < deadline:
            ready, _, _ = select.select([self._read], [], [], 0.2)
            if ready:
                try:
                    self._buffer += os.read(self._read, 65536)
                except OSError:
                    break
        text = self._buffer.decode().replace("\r\n", "\n")
        return text.splitlines()[:count]


@contextmanager
def listening(*args: str, tty: bool, **env: str) -> Iterator[Listener]:
    port = _free_port()
    read, write = pty.openpty() if tty else os.pipe()
    process = subprocess.Popen(
        [KEYFOB, "listen", "--port", str(port), *args],
        stdout=write,
        stderr=subprocess.STDOUT,
        env={**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, **env},
    )
    os.close(write)
    listener = Listener(port, read)
    try:
        assert listener.lines(1)[0].startswith("listening on")
        yield listener
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.close(read)


def test_any_of_several_secrets_verifies() -> None:
    old, new, stranger = new_secret(), new_secret(), new_secret()
    with listening("--secret", old, "--secret", new, tty=False) as listener:
        assert listener.post("msg_a", old) == 200
        assert listener.post("msg_b", new) == 200
        assert listener.post("msg_c", stranger) == 401
        lines = listener.lines(4)[1:]
    assert "Done/Success" in lines[0]
    assert "Done/Success" in lines[1]
    assert "signature rejected (none of the 2 secrets: " in lines[2]


def test_a_retried_delivery_shows_its_attempt_number() -> None:
    secret = new_secret()
    with listening("--secret", secret, tty=False) as listener:
        for _ in range(3):
            assert listener.post("msg_same", secret) == 200
        assert listener.post("msg_other", secret) == 200
        lines = listener.lines(5)[1:]
    assert "attempt" not in lines[0]
    assert lines[1].endswith("#1  attempt 2")
    assert lines[2].endswith("#1  attempt 3")
    assert "attempt" not in lines[3]


def test_colour_only_on_a_terminal_and_never_under_no_color() -> None:
    secret = new_secret()
    with listening("--secret", secret, tty=True) as listener:
        assert listener.post("msg_1", secret) == 200
        assert listener.post("msg_2", new_secret()) == 401
        done, rejected = listener.lines(3)[1:]
    assert done.startswith(GREEN)
    assert "Done/Success" in done
    assert rejected.startswith(RED)
    assert "signature rejected" in rejected

    with listening("--secret", secret, tty=True, NO_COLOR="1") as listener:
        assert listener.post("msg_1", secret) == 200
        (line,) = listener.lines(2)[1:]
    assert "Done/Success" in line
    assert "\x1b[" not in line

    with listening("--secret", secret, tty=False) as listener:
        assert listener.post("msg_1", secret) == 200
        (line,) = listener.lines(2)[1:]
    assert "Done/Success" in line
    assert "\x1b[" not in line
