"""The user face's lean POST remote answers exactly as its documented route does.

The twin of ``test_api_lean`` for ``POST /connectedcar/v4/user/vehicles/{id}/callbacks/{cbid}
/remotes``: every kind of request, good and bad (the gateway's 401 included), goes to an app
with the lean route and to one without it, on the same database, and status, body (but for
ids, ``uuid`` and ``timestamp``) and every header but ``date`` and ``content-length`` agree.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.routing import APIRoute
from test_api_lean import IGNORED, app_pair, client, served_by, summary

from conftest import make_tenant
from keyfob.api.lean_user import LeanUserRemotePost
from keyfob.auth.scopes import ALL_SCOPES
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from user_support import UserLogin, make_user

HORN = {"horn": {"state": "Activated"}}
GATEWAY = {"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "Token is invalid"}


def summarize(answer: httpx.Response) -> dict[str, Any]:
    """``summary``, with the gateway's 401 body (decision 28) kept whole."""
    if answer.status_code == 401 and answer.json() == GATEWAY:
        headers = [(k, v) for k, v in answer.headers.multi_items() if k not in IGNORED]
        return {"status": 401, "body": GATEWAY, "headers": headers}
    return summary(answer)


def requests(user: UserLogin, narrow: UserLogin, url: str, ids: dict[str, str]) -> list[Any]:
    good: dict[str, Any] = {"headers": user.headers, "params": user.params, "url": url}
    other_realm = {**user.headers, "x-introspect-realm": "clientsB2COpel"}
    return [
        ("accepted", {**good, "json": HORN}),
        ("no token", {**good, "json": HORN, "headers": {"x-introspect-realm": "clientsB2CDS"}}),
        (
            "garbage token",
            {**good, "json": HORN, "headers": {**user.headers, "Authorization": "Bearer x"}},
        ),
        (
            "Basic",
            {**good, "json": HORN, "headers": {**user.headers, "Authorization": "Basic eDp5"}},
        ),
        ("other realm", {**good, "json": HORN, "headers": other_realm}),
        (
            "unknown realm",
            {**good, "json": HORN, "headers": {**user.headers, "x-introspect-realm": "x"}},
        ),
        ("no client_id", {**good, "json": HORN, "params": {}}),
        ("other client_id", {**good, "json": HORN, "params": narrow.params}),
        (
            "missing scope",
            {**good, "json": HORN, "headers": narrow.headers, "params": narrow.params},
        ),
        ("NUL in query", {**good, "json": HORN, "params": {**user.params, "x": "\0"}}),
        (
            "long key",
            {**good, "json": HORN, "headers": {**user.headers, "Idempotency-Key": "k" * 300}},
        ),
        (
            "text body",
            {**good, "content": b"horn", "headers": {**user.headers, "Content-Type": "text/plain"}},
        ),
        (
            "malformed",
            {
                **good,
                "content": b"{",
                "headers": {**user.headers, "Content-Type": "application/json"},
            },
        ),
        ("too large", {**good, "json": {"horn": {"state": "x" * 300_000}}}),
        ("immobilization", {**good, "json": {"immobilization": {"immobilized": True}}}),
        ("two actions", {**good, "json": {**HORN, "lights": {"on": True}}}),
        ("unknown vehicle", {**good, "json": HORN, "url": url.replace(ids["vid"], "e" * 32)}),
        ("unknown callback", {**good, "json": HORN, "url": url.replace(ids["cbid"], "c" * 32)}),
        ("malformed callback id", {**good, "json": HORN, "url": url.replace(ids["cbid"], "x")}),
    ]


async def test_lean_and_documented_user_routes_answer_alike(db: Database, clock: FakeClock) -> None:
    seen: list[list[Any]] = []
    async with app_pair(db, clock, seen) as (lean, documented, setup):
        tenant = await make_tenant(setup, db, "lena", clock())
        await tenant.http.aclose()
        vid = tenant.vehicles["Electric"].id
        ctx = setup.state.ctx
        user = await make_user(ctx, vehicle_ids=[vid])
        narrow = await make_user(ctx, vehicle_ids=[vid], scopes=ALL_SCOPES - {"remote:horn:write"})
        callback = {
            "label": "app",
            "type": ["Remote"],
            "callback": {"webhook": {"name": "w", "target": "https://example.com/hook"}},
        }
        async with client(setup) as http:
            made = await http.post(
                "/connectedcar/v4/user/callbacks",
                json=callback,
                headers=user.headers,
                params=user.params,
            )
            assert made.status_code == 202, made.text
            narrow_made = await http.post(
                "/connectedcar/v4/user/callbacks",
                json=callback,
                headers=narrow.headers,
                params=narrow.params,
            )
            assert narrow_made.status_code == 202, narrow_made.text
        cbid = made.json()["callbackId"]
        url = f"/connectedcar/v4/user/vehicles/{vid}/callbacks/{cbid}/remotes"
        differences = []
        statuses = set()
        cases = requests(user, narrow, url, {"vid": vid, "cbid": cbid})
        # The narrow user's own callback, for the scope case.
        cases[8][1]["url"] = url.replace(cbid, narrow_made.json()["callbackId"])
        async with client(lean) as fast, client(documented) as slow:
            for name, request in cases:
                found = [summarize(await http.post(**request)) for http in (fast, slow)]
                statuses.add(found[0]["status"])
                if found[0] != found[1]:
                    differences.append(f"{name}:\n  lean       {found[0]}\n  documented {found[1]}")
        assert not differences, "\n".join(differences)
        assert statuses == {202, 400, 401, 403, 404, 413, 415}
        # The body above 256 KiB is refused before routing (api.limits): no route saw it.
        assert served_by(seen[0]) == {LeanUserRemotePost, type(None)}
        assert served_by(seen[1]) == {APIRoute, type(None)}
        assert len(seen[0]) == len(cases)
