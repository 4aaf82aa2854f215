"""A real ``keyfob serve`` in a folder of its own, for tests of what an operator does beside it
(``keyfob admin ...`` while it runs, the README's walkthrough as pasted)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

KEYFOB = str(Path(sys.executable).with_name("keyfob"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the caller's ``KEYFOB_*`` settings, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}, **extra}


@dataclass
class Served:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    @property
    def demo(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.folder / "keyfob-demo.json").read_text())
        return document

    def keyfob(self, *args: str) -> str:
        """Run another ``keyfob`` command in the same folder; its standard output."""
        done = subprocess.run(
            [KEYFOB, *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def log(self) -> str:
        return (self.folder / "serve.log").read_text(errors="replace")


@contextmanager
def serving(folder: Path, *args: str, **env: str) -> Iterator[Served]:
    """``keyfob serve --allow-private-webhooks`` on a free port until the block ends."""
    port = free_port()
    environment = clean_env(**env)
    with (folder / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [KEYFOB, "serve", "--port", str(port), "--allow-private-webhooks", *args],
            cwd=folder,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(folder, port, process, environment)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, served.log()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, served.log()[-3000:]
            time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
