"""How help shows a default: ``[default: ...]``, the form typer prints for an option whose
default is its own. Options that fall back to ``Settings`` (so that a settings file and
``KEYFOB_*`` variables apply) have no default of their own: their help says the setting's,
read from ``Settings`` here so that it cannot drift."""

from __future__ import annotations

from keyfob.config import Settings


def shown(value: object) -> str:
    return f"[default: {value}]"


def setting(name: str) -> str:
    """``[default: <the setting's default>]``."""
    return shown(Settings.model_fields[name].default)


GENERATED = shown("generated")
