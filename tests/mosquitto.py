"""A private Mosquitto for end-to-end tests and benchmarks: own config, free port, own pid.

Tests that need particular settings (an ACL, passwords, no persistence) must not depend on a
shared broker; this starts one on 127.0.0.1 with ``set_tcp_nodelay true``, waits until it
accepts connections, and stops it by the pid it started, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def available() -> bool:
    return Path(MOSQUITTO).exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_passwords(path: Path, users: Mapping[str, str]) -> None:
    """A Mosquitto password file (hashed by ``mosquitto_passwd``) with ``users``."""
    path.write_text("")
    for user, password in users.items():
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(path), user, password], check=True)
    path.chmod(0o600)


class Mosquitto:
    """One broker process; ``stop``/``start`` keep the port, so clients can reconnect."""

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        acl: Path | None = None,
        extra: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "mosquitto.log"
        lines = [
            "per_listener_settings false",
            "set_tcp_nodelay true",
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_type error",
            "log_type warning",
            f"log_dest file {self.log}",
            "max_connections -1",
            # The platform subscribes to every vehicle's retained presence at once: the
            # default queue of 1,000 messages per client would drop the rest (see deploy/).
            "max_queued_messages 100000",
            # As deploy/: the dispatcher acknowledges a message once stored, and Mosquitto's
            # default window of 20 unacknowledged messages would throttle it.
            "max_inflight_messages 1000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to a user who cannot read our files
        if users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = directory / "passwords"
            write_passwords(passwords, users)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        if acl is not None:
            lines.append(f"acl_file {acl}")
        lines += list(extra)
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def url(self, user: str | None = None, password: str | None = None) -> str:
        credentials = ""
        if user is not None:
            credentials = quote(user, safe="") + ":" + quote(password or "", safe="") + "@"
        return f"mqtt://{credentials}127.0.0.1:{self.port}"

    def start(self, timeout: float = 5.0) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {error or self.read_log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def read_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@contextlib.contextmanager
def running(directory: Path, **options: object) -> Iterator[Mosquitto]:
    broker = Mosquitto(directory, **options)  # type: ignore[arg-type]
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
