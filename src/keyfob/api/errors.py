"""One renderer for every non-2XX answer: the contract's ``xError`` body (decision 11).

FastAPI's own 422 never escapes: invalid input is a 400 with a message naming the field. The
one exception is the user face's refused Bearer token (``InvalidToken``): it gets the API
gateway's own 401 body, which clients match to know they must refresh (decision 28).

Database failures are sorted by ``store.outage.unreachable``: while the database cannot be
reached every request answers 503 ``UNAVAILABLE`` with ``Retry-After`` and the outage is logged
once, not once per request; any other database error is a bug, a 500 with its traceback. The 503 is
answered by a handler registered per exception class, inside the middleware, so Starlette's
outermost error middleware (which logs and re-raises whatever reaches it) never sees an
outage; a bug is passed on to it.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyfob.errors import ErrorCode, InvalidToken, KeyfobError
from keyfob.kit.clock import isoformat, utcnow
from keyfob.store.outage import Outage, unreachable

log = logging.getLogger("keyfob.api")


def error_body(error: ErrorCode, message: str) -> dict[str, Any]:
    return {
        "code": error.code,
        "uuid": str(uuid.uuid4()),
        "message": message,
        "timestamp": isoformat(utcnow()),
    }


def error_response(
    error: ErrorCode, message: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error_body(error, message or error.meaning), status_code=error.status, headers=headers
    )


GATEWAY_UNAUTHORIZED = {
    "httpCode": "401",
    "httpMessage": "Unauthorized",
    "moreInformation": "Token is invalid",
}
TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def token_invalid_response() -> JSONResponse:
    """The gateway's 401, exactly (decision 28); it never says which check failed."""
    return JSONResponse(GATEWAY_UNAUTHORIZED, status_code=401, headers=TOKEN_CHALLENGE)


def _describe(errors: Sequence[Any]) -> tuple[ErrorCode, str]:
    parts: list[str] = []
    code = ErrorCode.BAD_REQUEST
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where, field = (loc[0], ".".join(loc[1:])) if loc else ("request", "")
        if err.get("type") == "json_invalid":
            return ErrorCode.MALFORMED_JSON, "the body is not valid JSON"
        if where == "path":
            code = ErrorCode.INVALID_PATH_ID
        elif where == "query":
            code = ErrorCode.INVALID_QUERY
        elif where == "body":
            code = ErrorCode.INVALID_BODY
        parts.append(f"{where} {field}: {err.get('msg', 'invalid')}".replace(" :", ":"))
    return code, "; ".join(parts) or "the request is invalid"


DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa.DBAPIError,
    sa.TimeoutError,
    OSError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
"""What a database call can raise, unwrapped or wrapped by SQLAlchemy."""


def unavailable_response(outage: Outage) -> JSONResponse:
    return error_response(
        ErrorCode.UNAVAILABLE,
        "the database is unreachable; retry after the delay in Retry-After",
        {"Retry-After": str(outage.retry_after_s)},
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(KeyfobError)
    async def keyfob_error(_: Request, exc: KeyfobError) -> JSONResponse:
        return error_response(exc.error, exc.message, exc.headers)

    @app.exception_handler(InvalidToken)
    async def invalid_token(_: Request, exc: InvalidToken) -> JSONResponse:
        log.debug("bearer token refused: %s", exc.reason)
        return token_invalid_response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _describe(exc.errors())
        return error_response(code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        known = {
            400: ErrorCode.BAD_REQUEST,
            401: ErrorCode.UNAUTHENTICATED,
            403: ErrorCode.FORBIDDEN,
            404: ErrorCode.NOT_FOUND,
            405: ErrorCode.METHOD_NOT_ALLOWED,
            406: ErrorCode.NOT_ACCEPTABLE,
            415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        }
        error = known.get(exc.status_code, ErrorCode.INTERNAL)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such path in this API"
        return error_response(error, detail, dict(exc.headers or {}))

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not unreachable(exc):
            raise exc  # a bug: the last-resort handler's 500, outside every middleware
        outage: Outage = request.app.state.ctx.database.outage
        outage.failed(exc)
        return unavailable_response(outage)

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        message = "unexpected server error; it has been logged"
        body = error_body(ErrorCode.INTERNAL, message)
        # The answer's uuid is the request id in the log: a partner quoting it finds the line.
        log.error(
            "unexpected error on %s %s",
            request.method,
            request.url.path,
            exc_info=exc,
            extra={"request_id": body["uuid"]},
        )
        return JSONResponse(body, status_code=ErrorCode.INTERNAL.status)
