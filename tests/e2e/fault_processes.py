"""Fault tests' processes: each ``keyfob`` command in its own process group, with short deadlines.

A fault test runs the commands an operator runs (``keyfob serve``, ``keyfob dispatcher``,
``keyfob sim``) as real processes, so that one can be killed with SIGKILL (no clean-up runs, as
in a crash) and started again. Each is killed by its own pid, never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

COMMAND_TIMEOUT_S = 4.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def base_env(**extra: str) -> dict[str, str]:
    """Short deadlines and no budgets in the way: a lost answer shows in seconds."""
    return {
        **os.environ,
        "KEYFOB_SIM_SPEED": "0",
        "KEYFOB_VEHICLE__COMMAND_TIMEOUT_S": str(COMMAND_TIMEOUT_S),
        "KEYFOB_VEHICLE__WAKE_UP_TIMEOUT_S": str(COMMAND_TIMEOUT_S),
        "KEYFOB_VEHICLE__WAKE_UP_QUOTA_PER_MONTH": "100000",
        "KEYFOB_VEHICLE__SHORT_WINDOW_WAKE_UPS": "100000",
        "KEYFOB_RATE_LIMIT__BURST": "100000",
        **extra,
    }


class Process:
    """One ``keyfob`` command in its own process group; killed by its pid, never by name."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "keyfob.cli.main", *args]
        self.env = env
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """At the end of a test: SIGKILL (a graceful stop is not what is under test here)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


async def healthy(base: str, process: Process, timeout: float = 30.0) -> None:
    async with httpx.AsyncClient() as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}/health")).status_code == 200:
                    return
            assert process.alive(), process.tail()
            await asyncio.sleep(0.1)
    raise AssertionError(process.tail())
