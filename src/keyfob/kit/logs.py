"""One log format for every logger in the process: keyfob's own, uvicorn's and the libraries'.

The long-running commands call ``configure(level, form)`` once, before anything logs. ``text``
is one human line per record; ``json`` is one JSON object per line with ``time`` (UTC, ISO
8601), ``level``, ``logger`` and ``message``, then whichever of ``request_id``, ``remote_id``,
``callback_id`` (and the other ``FIELDS``) the record carries, so that a log pipeline can
filter on them without parsing sentences. A record gets those fields from ``extra=`` at the
call site, or from ``bound(...)`` around the code that logs (a context variable, so concurrent
tasks never see each other's values); ``extra=`` wins.

uvicorn's loggers lose their own handlers and propagate to the root, so its start-up lines and
(when on) access lines come out in the same format; an access record in JSON also carries
``client``, ``method``, ``path`` and ``status``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]


FIELDS = (
    "request_id",
    "remote_id",
    "callback_id",
    "vin",
    "attempt",
    "status",
    "error",
    "outcome",
    "notifications",
)
"""Record attributes copied into a JSON line when present (``extra=`` or ``bound``)."""

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_bound: ContextVar[dict[str, Any] | None] = ContextVar("keyfob_log_fields", default=None)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every record logged inside (in this task and the tasks it starts) carries ``fields``."""
    token = _bound.set({**(_bound.get() or {}), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _bound.get()
        if context:
            line.update(context)
        attributes = record.__dict__
        for name in FIELDS:
            value = attributes.get(name)
            if value is not None:
                line[name] = value
        if record.name == "uvicorn.access":
            line.update(_access_fields(record.args))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _access_fields(args: Any) -> dict[str, Any]:
    """uvicorn's access record: ``(client, method, path, http version, status)``."""
    if not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"client": client, "method": method, "path": path, "status": status}


def formatter(form: LogFormat) -> logging.Formatter:
    return JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str = "info", form: LogFormat = "text") -> None:
    """One handler on the root logger, on standard error, in ``form``; uvicorn's loggers
    propagate to it. Safe to call again (the previous handler is replaced)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(form))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        found = logging.getLogger(name)
        found.handlers.clear()
        found.propagate = True
        found.setLevel(logging.NOTSET)
