"""Every non-2XX answer is the contract's xError (decision 11), and a refusal stores nothing.

The requests here are the ones clients get wrong in practice: a wrong path or method, a body
that is not JSON or not labelled as JSON, text no database can hold. None may surface as
FastAPI's 422 or as a 500.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from conftest import CALLBACK, Tenant, create_callback
from keyfob.errors import ErrorCode
from keyfob.runtime.tables import callbacks, idempotency_keys, notifications, remote_events, remotes
from keyfob.store.engine import Database
from oracle_schemas import errors

STORED = (callbacks, remotes, remote_events, notifications, idempotency_keys)


def check_error(answer: httpx.Response, error: ErrorCode, *words: str) -> list[str]:
    if answer.status_code != error.status:
        return [f"status {answer.status_code} instead of {error.status}: {answer.text}"]
    problems = []
    if answer.headers.get("content-type") != "application/json":
        problems.append(f"content-type {answer.headers.get('content-type')}")
    data = answer.json()
    problems += errors("b2b-api", "xError", data)
    if sorted(data) != ["code", "message", "timestamp", "uuid"]:
        problems.append(f"members {sorted(data)}")
    if data.get("code") != error.code:
        problems.append(f"code {data.get('code')} instead of {error.code}: {data.get('message')}")
    return problems + [
        f"message lacks {w!r}: {data['message']}" for w in words if w not in data["message"]
    ]


async def stored(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in STORED
        }


def nothing() -> dict[str, int]:
    return {t.name: 0 for t in STORED}


async def test_unknown_path_is_an_xerror_404(tenant: Tenant, app: FastAPI) -> None:
    failures = []
    anonymous = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
    )
    async with anonymous:
        for client in (tenant.http, anonymous):
            for path in ("/nowhere", "/connectedcar/v3/fleet", "/connectedcar/v9/fleets"):
                failures += check_error(await client.get(path), ErrorCode.NOT_FOUND)
    assert not failures, failures


async def test_wrong_method_is_an_xerror_405(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    cases = [
        ("PATCH", f"{tenant.fleet}/remote/callbacks"),
        ("DELETE", f"{tenant.fleet}/remote/callbacks"),
        ("POST", f"{tenant.fleet}/remote/callbacks/{cbid}"),
        ("GET", f"{tenant.fleet}/remote/callbacks/{cbid}/status"),
        ("PUT", "/connectedcar/v3/fleets"),
    ]
    failures = []
    for method, path in cases:
        answer = await tenant.http.request(method, path, json={})
        failures += [
            f"{method} {path}: {p}" for p in check_error(answer, ErrorCode.METHOD_NOT_ALLOWED)
        ]
        if answer.status_code == 405 and "allow" not in answer.headers:
            failures.append(f"{method} {path}: no Allow header")
    assert not failures, failures


def body_routes(tenant: Tenant, cbid: str) -> list[tuple[str, str]]:
    vid = tenant.vehicles["Electric"].id
    return [
        ("POST", f"{tenant.fleet}/remote/callbacks"),
        ("PUT", f"{tenant.fleet}/remote/callbacks/{cbid}"),
        ("PUT", f"{tenant.fleet}/remote/callbacks/{cbid}/status"),
        ("POST", f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"),
    ]


BAD_BODIES: list[tuple[str, bytes, str, ErrorCode, tuple[str, ...]]] = [
    ("malformed", b'{"horn": {"state": ', "application/json", ErrorCode.MALFORMED_JSON, ("JSON",)),
    ("single quotes", b"{'horn': 1}", "application/json", ErrorCode.MALFORMED_JSON, ("JSON",)),
    ("NaN", b'{"lights": {"on": NaN}}', "application/json", ErrorCode.MALFORMED_JSON, ("JSON",)),
    ("not UTF-8", b'{"label": "\xff"}', "application/json", ErrorCode.MALFORMED_JSON, ("JSON",)),
    ("empty", b"", "application/json", ErrorCode.INVALID_BODY, ("empty",)),
    ("text", b"horn please", "text/plain", ErrorCode.UNSUPPORTED_MEDIA_TYPE, ("application/json",)),
    (
        "form",
        b"status=Paused",
        "application/x-www-form-urlencoded",
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ("application/json",),
    ),
    ("xml", b"<horn/>", "application/xml", ErrorCode.UNSUPPORTED_MEDIA_TYPE, ("application/xml",)),
    (
        "NUL in a string",
        b'{"label": "a\\u0000b", "status": "Paused"}',
        "application/json",
        ErrorCode.INVALID_BODY,
        ("label", "U+0000"),
    ),
    (
        "lone surrogate",
        b'{"label": "\\ud800", "status": "Paused"}',
        "application/json",
        ErrorCode.INVALID_BODY,
        ("label",),
    ),
    (
        "deep nesting",
        b"[" * 5000 + b"]" * 5000,
        "application/json",
        ErrorCode.INVALID_BODY,
        ("nested",),
    ),
    (
        "too large",
        b'{"label": "' + b"x" * 300_000 + b'"}',
        "application/json",
        ErrorCode.BODY_TOO_LARGE,
        ("larger",),
    ),
]


async def test_bodies_that_are_not_json_objects_are_refused_and_store_nothing(
    tenant: Tenant, db: Database
) -> None:
    cbid = await create_callback(tenant)
    before = (await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}")).json()
    failures: list[str] = []
    for method, path in body_routes(tenant, cbid):
        for name, raw, content_type, error, words in BAD_BODIES:
            answer = await tenant.http.request(
                method, path, content=raw, headers={"content-type": content_type}
            )
            failures += [f"{method} {path} {name}: {p}" for p in check_error(answer, error, *words)]
    assert not failures, "\n".join(failures)
    assert await stored(db) == {**nothing(), "callbacks": 1}
    assert (await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}")).json() == before


async def test_a_json_body_with_a_json_suffix_type_or_charset_is_accepted(tenant: Tenant) -> None:
    path = f"{tenant.fleet}/remote/callbacks"
    for content_type in ("application/json; charset=utf-8", "application/vnd.keyfob+json", ""):
        answer = await tenant.http.post(
            path, content=json.dumps(CALLBACK).encode(), headers={"content-type": content_type}
        )
        assert answer.status_code == 200, f"{content_type!r}: {answer.text}"


async def test_text_no_database_can_hold_is_refused_in_paths_queries_and_credentials(
    tenant: Tenant, db: Database
) -> None:
    http = tenant.http
    failures: list[str] = []
    cases: list[tuple[str, dict[str, Any], ErrorCode]] = [
        ("/connectedcar/v3/fleets/a%00b", {}, ErrorCode.INVALID_PATH_ID),
        ("/connectedcar/v3/vehicles/VF3%00", {}, ErrorCode.INVALID_PATH_ID),
        (f"{tenant.fleet}/remote/callbacks", {"indexRange": "1\x00-"}, ErrorCode.INVALID_QUERY),
        (f"{tenant.fleet}/remote/callbacks", {"pageToken": "\x00"}, ErrorCode.INVALID_QUERY),
        (tenant.fleet, {"client_id": "x\x00"}, ErrorCode.BAD_CREDENTIALS),
    ]
    for path, params, error in cases:
        answer = await http.get(path, params=params)
        failures += [f"{path} {params}: {p}" for p in check_error(answer, error)]
    answer = await http.get(tenant.fleet, auth=("alice\x00", tenant.password))
    failures += [f"login: {p}" for p in check_error(answer, ErrorCode.BAD_CREDENTIALS)]
    assert not failures, failures
    assert await stored(db) == nothing()


async def test_invalid_input_is_never_a_422(tenant: Tenant) -> None:
    """FastAPI answers 422 for what it validates itself; keyfob turns all of it into 400s."""
    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    remotes_url = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{tenant.fleet}/remote/callbacks", {"params": {"pageSize": "many"}}),
        ("GET", f"{tenant.fleet}/remote/callbacks", {"params": {"types": ["Horn", "Nope"]}}),
        ("GET", remotes_url, {"params": {"pageSize": -1}}),
        ("GET", "/connectedcar/v3/fleets", {"params": {"pageSize": 1.5}}),
        (
            "GET",
            f"/connectedcar/v3/vehicles/{tenant.vehicles['Electric'].vin}",
            {"params": {"extension": "x"}},
        ),
        ("POST", remotes_url, {"json": {"horn": {}}, "headers": {"Idempotency-Key": ""}}),
        ("POST", remotes_url, {"json": {"horn": {"state": 3}}}),
        ("PUT", f"{tenant.fleet}/remote/callbacks/{cbid}/status", {"json": {"status": None}}),
    ]
    for method, url, options in requests:
        answer = await tenant.http.request(method, url, **options)
        assert answer.status_code == 400, (
            f"{method} {url} {options}: {answer.status_code} {answer.text}"
        )
        assert answer.json()["code"] // 100 == 400


async def test_an_unexpected_failure_is_an_xerror_500_that_leaks_nothing(
    app: FastAPI, tenant: Tenant
) -> None:
    async def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/broken", broken)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="https://keyfob.test",
    )
    async with client:
        answer = await client.get("/broken")
    assert not check_error(answer, ErrorCode.INTERNAL)
    assert "secret" not in answer.text


async def test_errors_carry_a_fresh_uuid_and_timestamp(app: FastAPI) -> None:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
    )
    async with client:
        first = (await client.get("/connectedcar/v3/fleets")).json()
        second = (await client.get("/connectedcar/v3/fleets")).json()
    assert first["code"] == second["code"] == ErrorCode.UNAUTHENTICATED.code
    assert first["uuid"] != second["uuid"]
    assert first["timestamp"].endswith("Z")
