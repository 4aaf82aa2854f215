"""Using ``/console`` over HTTP as a browser would: cookies kept, the forms' CSRF tokens read
from the pages and posted back, redirects looked at rather than followed."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from conftest import Tenant

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
IDEMPOTENCY = re.compile(r'name="idempotency" value="([^"]+)-door"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, f"no CSRF token on the page: {page.text[:500]}"
    return html.unescape(found.group(1))


@asynccontextmanager
async def browser_http(
    app: Any, base_url: str = "https://keyfob.test"
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, follow_redirects=False
    ) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    """Sign in with the tenant's API credentials; the answer to the form's post."""
    page = await client.get("/console/login")
    assert page.status_code == 200, page.text
    answer = await client.post(
        "/console/login",
        data={
            "csrf": csrf_of(page),
            "login": tenant.login,
            "password": tenant.password,
            "client_id": tenant.client_id,
        },
    )
    assert answer.status_code == 303, answer.text
    return answer


def vehicle_path(tenant: Tenant, motorization: str = "Electric") -> str:
    return f"/console/fleets/{tenant.fleet_id}/vehicles/{tenant.vehicles[motorization].id}"


async def send_remote(
    client: httpx.AsyncClient, path: str, action: str, callback_id: str, **fields: str
) -> httpx.Response:
    """Fill one remote form of the vehicle page at ``path`` and post it."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    data = {"csrf": csrf_of(page), "action": action, "callback": callback_id, **fields}
    return await client.post(f"{path}/remotes", data=data)
