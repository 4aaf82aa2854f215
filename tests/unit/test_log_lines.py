"""The JSON log line: fields from ``extra=`` and from ``bound``, without leaking between tasks."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from keyfob.kit.logs import JsonFormatter, bound


def line(record: logging.LogRecord) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("keyfob.test", logging.WARNING, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_extra_fields_are_top_level_keys() -> None:
    got = line(record("hello", callback_id="cb1", remote_id="r1", attempt=2))
    assert got["level"] == "warning"
    assert got["logger"] == "keyfob.test"
    assert got["message"] == "hello"
    assert (got["callback_id"], got["remote_id"], got["attempt"]) == ("cb1", "r1", 2)
    assert "request_id" not in got


async def test_bound_fields_belong_to_their_task() -> None:
    async def one(remote: str) -> dict[str, object]:
        with bound(remote_id=remote, request_id=f"req-{remote}"):
            await asyncio.sleep(0)
            return line(record("in task"))

    first, second = await asyncio.gather(one("a"), one("b"))
    assert (first["remote_id"], first["request_id"]) == ("a", "req-a")
    assert (second["remote_id"], second["request_id"]) == ("b", "req-b")
    assert "remote_id" not in line(record("outside"))


def test_extra_wins_over_bound() -> None:
    with bound(remote_id="outer"):
        assert line(record("x", remote_id="inner"))["remote_id"] == "inner"


def test_an_exception_is_one_field_of_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    text = JsonFormatter().format(made)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]
