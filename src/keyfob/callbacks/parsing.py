"""Pieces both faces' callback parsers share: strict input models, attributes, error wording.

Parsing is strict on both faces (no ``"3"`` for 3, no unknown member) and every refusal is a
``KeyfobError`` whose message starts with the JSON path at fault, so the fleet face's
``RemoteCallbackSubscribe`` and the user face's ``CallbackSubscribe`` word their refusals alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from keyfob.callbacks.attributes import (
    FLEET,
    AttributeSpec,
    AttributeType,
    Variables,
    check_attribute,
)
from keyfob.errors import ErrorCode, KeyfobError

MAX_ATTRIBUTES = 64


class Input(BaseModel):
    """A strict JSON object: no coercion, no unknown member."""

    model_config = ConfigDict(strict=True, extra="forbid")


class AttributeIn(Input):
    type: Annotated[AttributeType, Strict(False)]
    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]


Attributes = Annotated[list[AttributeIn], Field(max_length=MAX_ATTRIBUTES)]


def not_blank(value: str, path: str) -> str:
    if not value.strip():
        raise KeyfobError(ErrorCode.INVALID_BODY, f"{path}: must not be blank")
    return value


def attribute_specs(
    items: Sequence[AttributeIn], path: str, *, face: Variables = FLEET
) -> list[AttributeSpec]:
    """Checked attributes; ``path`` names the list (``callback.webhook.attributes``).

    A header may be configured once: two values for one header name (in any case) would leave
    the receiver guessing which one counts.
    """
    specs: list[AttributeSpec] = []
    headers: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        spec = AttributeSpec(type=item.type, key=item.key, value=item.value)
        check_attribute(spec, where, face=face)
        if spec.type is AttributeType.HEADER:
            first = headers.setdefault(spec.key.lower(), index)
            if first != index:
                raise KeyfobError(
                    ErrorCode.INVALID_BODY,
                    f"{where}.key: the header {spec.key} is already set by {path}[{first}]",
                )
        specs.append(spec)
    return specs


def stored_attributes(specs: Sequence[AttributeSpec]) -> list[dict[str, str]]:
    """Attributes as the contract writes them: ``{type, key, value}``."""
    return [{"type": a.type.value, "key": a.key, "value": a.value} for a in specs]


# -- pydantic errors into the contract's words ---------------------------------------------

_M = TypeVar("_M", bound=BaseModel)

_PHRASES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
}


def validate(model: type[_M], data: object, *, prefix: tuple[str, ...] = ()) -> _M:
    """``data`` as ``model``, or one INVALID_BODY naming up to three problems by JSON path."""
    if not isinstance(data, dict):
        where = ".".join(prefix) or "body"
        raise KeyfobError(ErrorCode.INVALID_BODY, f"{where}: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            _describe((*prefix, *error["loc"]), error["type"], error["msg"])
            for error in exc.errors()
        ]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise KeyfobError(ErrorCode.INVALID_BODY, "; ".join(problems[:3]) + more) from None


def _describe(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    phrase = _PHRASES.get(kind) or message[:1].lower() + message[1:]
    return f"{path or 'body'}: {phrase}" if kind != "missing" else f"{path} {phrase}"


def present(data: object, *names: str) -> list[str]:
    """Which of ``names`` ``data`` (a JSON object, or anything) holds with a non-null value."""
    if not isinstance(data, dict):
        return []
    found: dict[str, Any] = data
    return [name for name in names if found.get(name) is not None]
