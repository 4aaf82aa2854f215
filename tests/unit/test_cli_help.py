"""What ``keyfob ... --help`` shows a person reading it: flags as flags, serve first, and
every default written one way (``[default: ...]``), the settings' own defaults included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from keyfob.cli.main import app
from keyfob.config import Settings


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (path, result.output)
    return result.output


ALL = list(_commands(typer.main.get_group(app)))


def test_no_flag_is_shown_as_taking_a_value() -> None:
    assert len(ALL) > 25
    for path in ALL:
        text = _help(*path)
        assert "<bool>" not in text, path
        assert re.search(r"^\s+--help\s+Show this message", text, re.MULTILINE), path


def test_serve_comes_first() -> None:
    commands = _help().split("Commands:", 1)[1].split()
    assert commands[0] == "serve"


def test_defaults_are_shown_one_way() -> None:
    for path in ALL:
        options = _help(*path).split("Options:", 1)[-1]
        assert "Default:" not in options, path
        assert not re.search(r"\[\d+\]|\[[\d.]+\]|\(default", options), path


def test_serve_shows_the_settings_defaults_it_falls_back_to() -> None:
    chunks = " ".join(_help("serve").split()).split(" --")
    defaults = Settings()
    for option, value in [
        ("--host", defaults.host),
        ("--port", defaults.port),
        ("--db", defaults.db),
        ("--vehicles", defaults.vehicles),
        ("--credentials-file", defaults.credentials_file),
    ]:
        (shown,) = [c for c in chunks if c.startswith(f"{option[2:]} <")]
        assert shown.endswith(f"[default: {value}]"), option
