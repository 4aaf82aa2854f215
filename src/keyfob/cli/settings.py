"""Turning command-line options into ``Settings``.

Options win over ``KEYFOB_*`` variables, which win over the TOML file named by ``--config`` or
``KEYFOB_CONFIG`` (see ``settings.example.toml``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from keyfob.config import Settings, load_settings


def build_settings(config_file: Path | None = None, **options: Any) -> Settings:
    given = {k: v for k, v in options.items() if v is not None}
    if config_file is None and os.environ.get("KEYFOB_CONFIG"):
        config_file = Path(os.environ["KEYFOB_CONFIG"])
    try:
        return load_settings(config_file, **given)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        typer.echo(f"invalid settings: {problems}", err=True)
        raise typer.Exit(2) from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """``port: Input should be ...``; a rule across settings has no location and its message
    is the operator's own sentence (pydantic prefixes it with ``Value error, ``)."""
    message = message.removeprefix("Value error, ")
    return f"{'.'.join(str(p) for p in loc)}: {message}" if loc else message
