"""Turning command-line options into ``Settings``.

Options win over ``KEYFOB_*`` variables, which win over the TOML file named by ``--config`` or
``KEYFOB_CONFIG`` (see ``settings.example.toml``). A file that is named but missing, unreadable
or not TOML stops the command (exit 3): running on defaults would be running something else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from keyfob.cli.exits import Exit, stop
from keyfob.config import Settings, SettingsFileError, load_settings


def build_settings(config_file: Path | None = None, **options: Any) -> Settings:
    given = {k: v for k, v in options.items() if v is not None}
    named_by = "--config"
    if config_file is None and os.environ.get("KEYFOB_CONFIG"):
        config_file, named_by = Path(os.environ["KEYFOB_CONFIG"]), "KEYFOB_CONFIG"
    try:
        return load_settings(config_file, **given)
    except SettingsFileError as exc:
        stop(Exit.SETTINGS_FILE, f"{exc} (named by {named_by})")
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        stop(Exit.USAGE, f"invalid settings: {problems}")


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """``port: Input should be ...``; a rule across settings has no location and its message
    is the operator's own sentence (pydantic prefixes it with ``Value error, ``)."""
    message = message.removeprefix("Value error, ")
    return f"{'.'.join(str(p) for p in loc)}: {message}" if loc else message
