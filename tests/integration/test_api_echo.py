"""An error names the id it could not find, but never more than 64 characters of it.

A client can put an id of any length in a path; a 404 or 400 that echoed it whole would send
10,000 characters back for 10,000 sent. The message quotes the start of the id and marks the
cut with an ellipsis, on both faces and for every kind of id.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from conftest import Tenant, create_callback
from keyfob.store.engine import Database
from user_support import make_user, user_http

V4 = "/connectedcar/v4"
LONG = "a" * 10_000
"""Hexadecimal, so it passes the id pattern and reaches the look-up."""
BAD = "z" * 10_000
"""Outside the id pattern: refused before the look-up, and named in the refusal."""


def problems(answer: httpx.Response, sent: str) -> list[str]:
    if answer.status_code not in (400, 404):
        return [f"status {answer.status_code}: {answer.text[:200]}"]
    message: str = answer.json()["message"]
    found = []
    if len(answer.content) > 500:
        found.append(f"an answer of {len(answer.content)} bytes")
    if sent[:64] + "…" not in message:
        found.append(f"the message does not quote the id's start: {message[:200]}")
    return found


async def test_a_long_id_is_quoted_cut_in_every_error_that_names_it(
    app: FastAPI, tenant: Tenant, db: Database
) -> None:
    fleet, vid = tenant.fleet, tenant.vehicles["Electric"].id
    cbid = await create_callback(tenant)
    user = await make_user(app.state.ctx, vehicle_ids=[vid])
    cases: list[tuple[httpx.AsyncClient, str, str, dict[str, Any]]] = [
        (tenant.http, "GET", f"/connectedcar/v3/fleets/{LONG}", {}),
        (tenant.http, "GET", f"{fleet}/vehicles/{LONG}", {}),
        (tenant.http, "GET", f"/connectedcar/v3/vehicles/{LONG}", {}),
        (tenant.http, "GET", f"{fleet}/remote/callbacks/{LONG}", {}),
        (tenant.http, "GET", f"{fleet}/remote/callbacks/{BAD}", {}),
        (tenant.http, "GET", f"{fleet}/vehicles/{vid}/callbacks/{cbid}/remotes/{LONG}", {}),
        (tenant.http, "GET", f"{fleet}/vehicles/{vid}/callbacks/{cbid}/remotes/{BAD}", {}),
        (tenant.http, "GET", f"{fleet}/remote/callbacks/{cbid}/deliveries/{LONG}", {}),
        (tenant.http, "GET", f"{fleet}/remote/callbacks/{cbid}/deliveries/{BAD}", {}),
        (tenant.http, "GET", f"{fleet}/vehicles/{vid}/stolen/{LONG}", {}),
        (tenant.http, "GET", f"{fleet}/remote/callbacks", {"params": {"indexRange": LONG}}),
        (
            tenant.http,
            "POST",
            f"{fleet}/remote/callbacks/{cbid}/deliveries/replay",
            {"json": {"since": LONG}},
        ),
    ]
    async with user_http(app, user) as user_client:
        cases += [
            (user_client, "GET", f"{V4}/user/vehicles/{LONG}", {}),
            (user_client, "GET", f"{V4}/user/callbacks/{LONG}", {}),
            (user_client, "GET", f"{V4}/user/callbacks/{BAD}", {}),
        ]
        failures: list[str] = []
        for http, method, path, options in cases:
            answer = await http.request(method, path, **options)
            sent = BAD if BAD in path else LONG
            failures += [f"{method} {path[:90]}…: {p}" for p in problems(answer, sent)]
    assert not failures, "\n".join(failures)
