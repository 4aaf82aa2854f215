"""An unexpected server error is logged with the answer's ``uuid`` as ``request_id``.

A partner quotes the ``uuid`` of a 500; the operator finds the one log line (and its traceback)
by that id in the JSON logs (``docs/operations.md``).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest


async def test_a_500_is_logged_under_its_uuid(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://keyfob.test") as http:
        with caplog.at_level(logging.ERROR, logger="keyfob.api"):
            answer = await http.get("/test-broken")
    assert answer.status_code == 500
    lines = [r for r in caplog.records if r.name == "keyfob.api"]
    assert len(lines) == 1
    assert getattr(lines[0], "request_id", None) == answer.json()["uuid"]
    assert lines[0].exc_info is not None
    assert "GET /test-broken" in lines[0].getMessage()
