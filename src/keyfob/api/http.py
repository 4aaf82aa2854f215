"""Reading JSON bodies ourselves (clear 400/413/415 errors) and answering in HAL+JSON.

A body is UTF-8 JSON (decision 33): bytes in another encoding are refused, although
``json.loads`` would guess UTF-16 or UTF-32 from them, and so is an object naming a key twice,
which ``json.loads`` would settle silently by keeping the last value. Looking for repeated keys
costs a second, slower parse, so it is only done when a cheap count cannot rule them out: every
key of the text is followed by a colon, so a text with exactly as many colons as the parsed
value has keys repeats none (a remote's body is such a text; a callback's, whose target URL
holds a colon, takes the slower parse).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.text import shown

MAX_BODY = 256 * 1024
"""Decision 33; ``api.limits`` refuses a bigger body while it is read, on every route."""
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


def too_large() -> KeyfobError:
    """413, and the connection is closed rather than the rest of the body read."""
    return KeyfobError(
        ErrorCode.BODY_TOO_LARGE,
        f"the body is larger than {MAX_BODY} bytes",
        headers={"Connection": "close"},
    )


def parse_json(raw: bytes) -> object:
    """The body's JSON value, or a 400 that says what is wrong with it."""
    if len(raw) > MAX_BODY:
        raise too_large()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyfobError(
            ErrorCode.MALFORMED_JSON,
            f"the body is not valid JSON: send it as UTF-8 (byte {exc.start} is not UTF-8)",
        ) from None
    if not text.strip():
        raise KeyfobError(ErrorCode.INVALID_BODY, "the body is empty; send a JSON object")
    data = _loads(text)
    if _check_text(data) != raw.count(b":"):
        _loads(text, object_pairs_hook=_unique_keys)
    return data


def _loads(text: str, **options: Any) -> object:
    try:
        return json.loads(text, parse_constant=_no_constants, **options)
    except RecursionError:
        raise KeyfobError(ErrorCode.INVALID_BODY, TOO_DEEP) from None
    except ValueError as exc:
        raise KeyfobError(ErrorCode.MALFORMED_JSON, f"the body is not valid JSON: {exc}") from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise KeyfobError(
                    ErrorCode.MALFORMED_JSON,
                    f"the body is not valid JSON: the key {shown(key)} appears twice in one object",
                )
            seen.add(key)
    return found


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


def _check_text(data: object) -> int:
    """Refuse strings no database stores and nesting no contract body has; the number of
    keys in ``data``'s objects.

    JSON admits ``\\u0000`` and unpaired surrogates such as ``\\ud800``; PostgreSQL and
    UTF-8 do not, so they are a 400 naming the field rather than a failed insert.
    """
    keys = 0
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
            keys += len(value)
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if not _storable(key):
                    raise KeyfobError(ErrorCode.INVALID_BODY, f"{shown(where)}: {BAD_TEXT}")
                stack.append((where, depth + 1, item))
    return keys
