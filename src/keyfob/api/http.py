"""Reading JSON bodies ourselves (clear 400/415 errors) and answering in HAL+JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from keyfob.errors import ErrorCode, KeyfobError

MAX_BODY = 256 * 1024
MAX_DEPTH = 32
TOO_DEEP = f"the body is nested deeper than {MAX_DEPTH} levels"
BAD_TEXT = "must be Unicode text without U+0000 or unpaired surrogates"


class HalResponse(JSONResponse):
    media_type = "application/hal+json"


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def check_media_type(content_type: str) -> None:
    """A body must be JSON (``application/json`` or any ``+json``); none declared is fine."""
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime != "application/json" and not mime.endswith("+json"):
        raise KeyfobError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"send the body as JSON with Content-Type: application/json (got {mime})",
        )


def parse_json(raw: bytes) -> object:
    """The body's JSON value, or a 400 that says what is wrong with it."""
    if len(raw) > MAX_BODY:
        raise KeyfobError(ErrorCode.INVALID_BODY, f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        raise KeyfobError(ErrorCode.INVALID_BODY, "the body is empty; send a JSON object")
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise KeyfobError(ErrorCode.INVALID_BODY, TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyfobError(ErrorCode.MALFORMED_JSON, f"the body is not valid JSON: {exc}") from None
    _check_text(data)
    return data


async def json_body(request: Request) -> object:
    check_media_type(request.headers.get("content-type", ""))
    return parse_json(await request.body())


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(data: object) -> None:
    """Refuse strings no database stores and nesting no contract body has.

    JSON admits ``\\u0000`` and unpaired surrogates such as ``\\ud800``; PostgreSQL and
    UTF-8 do not, so they are a 400 naming the field rather than a failed insert.
    """
    stack: list[tuple[str, int, object]] = [("", 0, data)]
    while stack:
        path, depth, value = stack.pop()
        if depth > MAX_DEPTH:
            raise KeyfobError(ErrorCode.INVALID_BODY, TOO_DEEP)
        if isinstance(value, str) and not _storable(value):
            raise KeyfobError(ErrorCode.INVALID_BODY, f"{path or 'body'}: {BAD_TEXT}")
        if isinstance(value, list):
            stack.extend((f"{path}[{i}]", depth + 1, v) for i, v in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if not _storable(key):
                    raise KeyfobError(ErrorCode.INVALID_BODY, f"{where!r}: {BAD_TEXT}")
                stack.append((where, depth + 1, item))
