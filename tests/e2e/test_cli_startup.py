"""What the operator sees when ``keyfob`` cannot start: one line on stderr naming what to fix,
the documented exit code (README, "Exit codes"), no traceback, and nothing started or written.

Every case runs the installed ``keyfob`` command as a subprocess in an empty folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KEYFOB = str(Path(sys.executable).with_name("keyfob"))


def run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}
    return subprocess.run(
        [KEYFOB, *args],
        cwd=folder,
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, never listening: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_missing_config_file_is_an_error_not_the_defaults(tmp_path: Path, held_port: int) -> None:
    result = run(tmp_path, "serve", "--config", "nope.toml", "--port", str(held_port))

    assert result.returncode == 3
    assert one_line(result) == "settings file nope.toml: no such file (named by --config)"
    assert list(tmp_path.iterdir()) == []


def test_keyfob_config_naming_a_missing_file_is_an_error_for_every_command(
    tmp_path: Path,
) -> None:
    result = run(tmp_path, "admin", "partner", "list", KEYFOB_CONFIG="gone.toml")

    assert result.returncode == 3
    assert one_line(result) == "settings file gone.toml: no such file (named by KEYFOB_CONFIG)"


def test_a_config_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    result = run(tmp_path, "serve", "--config", "conf")

    assert result.returncode == 3
    assert one_line(result) == "settings file conf: is a directory (named by --config)"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("port = 8081\nhost = = 'x'\n", "(at line 2, column 8)"),
        ("port = 8081\n[delivery\n", "(at line 2, column 10)"),
        ("vehicles = [\n", "(at line 1, column 13)"),
    ],
)
def test_a_toml_syntax_error_names_file_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    (tmp_path / "keyfob.toml").write_text(text)
    result = run(tmp_path, "serve", "--config", "keyfob.toml")

    assert result.returncode == 3
    line = one_line(result)
    assert line.startswith("settings file keyfob.toml: ")
    assert where in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyfob.toml"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "keyfob.db",
            "cannot use the database URL 'keyfob.db': use sqlite:///relative.db, "
            "sqlite:////absolute.db or postgresql://user@host/name "
            "(a file here: sqlite:///keyfob.db)",
        ),
        (
            "mysql://keyfob@db/keyfob",
            "cannot use the database URL 'mysql://keyfob@db/keyfob': use sqlite:///relative.db, "
            "sqlite:////absolute.db or postgresql://user@host/name",
        ),
        (
            "sqlite:///missing/keyfob.db",
            "cannot open the database sqlite:///missing/keyfob.db: no folder missing",
        ),
    ],
)
def test_a_database_url_keyfob_cannot_use(
    tmp_path: Path, free_port: int, url: str, expected: str
) -> None:
    result = run(tmp_path, "serve", "--db", url, "--port", str(free_port))

    assert result.returncode == 4
    assert one_line(result) == expected
    assert list(tmp_path.iterdir()) == []


def test_a_database_host_that_does_not_exist(tmp_path: Path, free_port: int) -> None:
    url = "postgresql://keyfob:pw@no-such-host.invalid/keyfob"
    result = run(tmp_path, "serve", "--db", url, "--port", str(free_port))

    assert result.returncode == 4
    line = one_line(result)
    assert line.startswith(
        "cannot reach the database postgresql://keyfob:***@no-such-host.invalid/"
    )
    assert "pw" not in line
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_refuses_connections(tmp_path: Path, closed_port: int) -> None:
    url = f"postgresql://keyfob@127.0.0.1:{closed_port}/keyfob"
    for command in (["db", "upgrade"], ["admin", "partner", "list"], ["worker"]):
        result = run(tmp_path, *command, "--db", url)

        assert result.returncode == 4, command
        line = one_line(result)
        assert line.startswith(f"cannot reach the database {url}: "), command
        assert "Connect call failed" in line


def test_serve_with_an_unreachable_broker_stops_before_provisioning(
    tmp_path: Path, free_port: int, closed_port: int
) -> None:
    broker = f"mqtt://keyfob-platform:pw@127.0.0.1:{closed_port}"
    result = run(tmp_path, "serve", "--mqtt", broker, "--port", str(free_port))

    assert result.returncode == 5
    line = one_line(result)
    assert line.startswith(f"cannot reach the MQTT broker: mqtt 127.0.0.1:{closed_port}: ")
    assert result.stdout == ""  # no demo credentials printed ...
    assert list(tmp_path.iterdir()) == []  # ... nor written, and no database made


def test_a_broker_url_that_is_not_one(tmp_path: Path) -> None:
    result = run(tmp_path, "dispatcher", "--mqtt", "http://broker", "--db", "sqlite:///k.db")

    assert result.returncode == 5
    assert one_line(result) == (
        "cannot reach the MQTT broker: mqtt url: scheme must be mqtt or mqtts, got 'http'"
    )


def test_a_port_in_use_is_found_before_the_database_is_touched(
    tmp_path: Path, held_port: int
) -> None:
    result = run(tmp_path, "serve", "--port", str(held_port))

    assert result.returncode == 6
    assert one_line(result) == (
        f"cannot listen on 127.0.0.1:{held_port}: port {held_port} on 127.0.0.1 is already in "
        "use; choose another with --port"
    )
    assert list(tmp_path.iterdir()) == []


def test_keyfob_listen_on_a_port_in_use(tmp_path: Path, held_port: int) -> None:
    result = run(tmp_path, "listen", "--port", str(held_port))

    assert result.returncode == 6
    assert one_line(result).startswith(f"cannot listen on 127.0.0.1:{held_port}: port ")
