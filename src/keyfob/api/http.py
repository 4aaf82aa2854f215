"""Reading JSON bodies ourselves (clear 400/415 errors) and answering in HAL+JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from keyfob.errors import ErrorCode, KeyfobError

MAX_BODY = 256 * 1024


class HalResponse(JSONResponse):
    media_type = "application/hal+json"


def _no_constants(name: str) -> Any:
    raise ValueError(name)


async def json_body(request: Request) -> object:
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime != "application/json" and not mime.endswith("+json"):
        raise KeyfobError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"send the body as JSON with Content-Type: application/json (got {mime})",
        )
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise KeyfobError(ErrorCode.INVALID_BODY, f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        raise KeyfobError(ErrorCode.INVALID_BODY, "the body is empty; send a JSON object")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyfobError(ErrorCode.MALFORMED_JSON, f"the body is not valid JSON: {exc}") from None
