"""Turning command-line options into ``Settings``: options win over ``KEYFOB_*`` variables."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from keyfob.config import Settings


def build_settings(**options: Any) -> Settings:
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"invalid settings: {problems}", err=True)
        raise typer.Exit(2) from None
