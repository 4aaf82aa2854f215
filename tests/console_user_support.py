"""Signing in to ``/console`` as an end user over HTTP, as a browser does: the console's
brand form, keyfob's own login and consent pages, the redirect back with the code."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from console_support import csrf_of
from oauth_support import PASSWORD, submit

PEUGEOT = "clientsB2CPeugeot"


def path_of(location: str) -> str:
    """A redirect's path and query: the test client speaks to one server."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def start(client: httpx.AsyncClient, realm: str = PEUGEOT) -> httpx.Response:
    """The console's brand form posted: the redirect to the authorization server."""
    page = await client.get("/console/user/login")
    assert page.status_code == 200, page.text
    answer = await client.post("/console/user/login", data={"csrf": csrf_of(page), "realm": realm})
    assert answer.status_code == 303, answer.text
    return answer


async def to_callback(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD, realm: str = PEUGEOT
) -> str:
    """Through the login and consent pages: where the authorization server sends the browser."""
    authorize = await client.get(path_of((await start(client, realm)).headers["location"]))
    assert authorize.status_code == 200, authorize.text
    consent = await submit(client, authorize, login=login, password=password)
    assert consent.status_code == 200, consent.text
    allowed = await submit(client, consent, decision="allow")
    assert allowed.status_code == 302, allowed.text
    return str(allowed.headers["location"])


async def sign_in_user(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD
) -> httpx.Response:
    """The whole sign-in; the console's answer to the callback (a 303 to the user's pages)."""
    back = await client.get(path_of(await to_callback(client, login, password)))
    assert back.status_code == 303, back.text
    return back
