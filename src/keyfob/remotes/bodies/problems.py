"""Turn pydantic's validation errors into the sentences a caller reads in ``xError.message``.

A pydantic ``ValidationError`` must never leave the remotes package: its text speaks of Python
types and its locations are tuples. Each error becomes ``<json.path>: <what is wrong>``, with the
path written the way the caller wrote the body (``navigation.positions[0].coordinates``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from keyfob.remotes.bodies.base import show

_QUOTED = re.compile(r"'([^']*)'")

_KINDS = {
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
}


def json_path(parts: Sequence[str | int]) -> str:
    """``("a", "b", 0, "c")`` → ``a.b[0].c``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    got = show(error.get("input"))
    if kind == "keyfob":
        return str(ctx["message"])
    if kind == "missing":
        return "is required"
    if kind in _KINDS:
        return f"{_KINDS[kind]} (got {got})"
    if kind in {"literal_error", "enum"}:
        allowed = ", ".join(_QUOTED.findall(str(ctx.get("expected", ""))))
        return f"must be one of {allowed} (got {got})"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} item(s) (got {ctx['actual_length']})"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} item(s) (got {ctx['actual_length']})"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']} (got {got})"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']} (got {got})"
    return str(error["msg"])


def describe(exc: ValidationError, *, prefix: Sequence[str | int] = ()) -> str:
    """Every problem of ``exc`` as ``path: text``, joined with ``; ``."""
    lines: list[str] = []
    for error in exc.errors():
        at = tuple((error.get("ctx") or {}).get("at", ()))
        path = json_path((*prefix, *error["loc"], *at))
        line = f"{path}: {_describe(error)}"
        if line not in lines:
            lines.append(line)
    return "; ".join(lines)


def null_paths(data: object, prefix: Sequence[str | int] = ()) -> list[str]:
    """JSON paths of every ``null`` member value: the contract never uses null in a body."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*prefix, str(key))
            if value is None:
                found.append(json_path(here))
            else:
                found.extend(null_paths(value, here))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(null_paths(item, (*prefix, index)))
    return found
