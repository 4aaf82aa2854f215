"""The sign-in pages in a real browser: Debian's chromium driven by Playwright.

keyfob runs under uvicorn on a loopback port; the OAuth client's redirect URI is a loopback
server of the test's own, so the browser really follows the redirect after consent. A person's
view is what is asserted: labelled fields, the messages shown, the keyboard, where the browser
ends up; and that the page's security policy let its own style sheet load and blocked nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Response, expect

from browser_support import (
    Receiver,
    callback_receiver,
    launch_chromium,
    loopback_socket,
    serve,
    url_of,
)
from keyfob.api.app import create_app
from keyfob.auth.pkce import new_verifier, s256
from keyfob.config import Settings
from keyfob.store import migrate
from keyfob.store.engine import Database
from oauth_support import PASSWORD, Registered, add_user, register

pytestmark = pytest.mark.browser


@dataclass
class Site:
    app: Any
    url: str
    client: Registered
    login: str
    receiver: Receiver

    def authorize_url(self, **extra: str) -> str:
        params = {
            "client_id": self.client.client_id,
            "response_type": "code",
            "redirect_uri": self.client.redirect_uri,
            "scope": "openid profile",
            "state": "browser-state-1",
            "locale": "en-GB",
            **extra,
        }
        return f"{self.url}/am/oauth2/authorize?{urlencode(params)}"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    database = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
    await migrate.upgrade(database)
    sock = loopback_socket()
    settings = Settings(db=database.url, vehicles=0, public_url=url_of(sock))
    app = create_app(settings, database=database, announce=lambda _: None)
    async with app.router.lifespan_context(app), callback_receiver() as receiver:
        ctx = app.state.ctx
        client = await register(ctx, redirect_uri=f"{receiver.base_url}/oauth/callback")
        login = await add_user(ctx)
        async with serve(app, sock) as url:
            yield Site(app, url, client, login, receiver)
    await database.dispose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as found:
        yield found


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-GB")
    opened = await context.new_page()
    complaints: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        # Failed loads are judged by their response below (a 400 page is meant to be one).
        if message.type in ("error", "warning") and "Failed to load" not in message.text:
            complaints.append(message.text)

    def loaded(response: Response) -> None:
        subresource = response.request.resource_type != "document"
        if subresource and response.status >= 400 and urlsplit(response.url).path != "/favicon.ico":
            complaints.append(f"{response.status} {response.url}")

    opened.on("console", listen)
    opened.on("response", loaded)
    yield opened
    await context.close()
    assert not complaints, f"the browser complained: {complaints}"


def landed(site: Site, page: Page) -> dict[str, str]:
    parts = urlsplit(page.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == site.client.redirect_uri
    assert site.receiver.targets, "the redirect URI was never requested"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


async def test_signing_in_lands_on_the_redirect_uri_with_a_code_that_gives_tokens(
    site: Site, page: Page
) -> None:
    verifier = new_verifier()
    await page.goto(site.authorize_url(code_challenge=s256(verifier), code_challenge_method="S256"))
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_text("Peugeot", exact=True)).to_be_visible()
    button = page.get_by_role("button", name="Sign in")
    background = await button.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(239, 239, 239)")  # the style sheet loaded
    await page.get_by_label("Email or login").fill(site.login)
    await page.get_by_label("Password").fill(PASSWORD)
    await button.click()

    await expect(page.get_by_role("heading", name="Allow My Peugeot?")).to_be_visible()
    await expect(page.get_by_text("Lock and unlock your vehicles")).to_be_visible()
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(f"{site.client.redirect_uri}?**")
    await expect(page.get_by_text("Signed in. You can close this page.")).to_be_visible()

    query = landed(site, page)
    assert len(query["code"]) == 36
    assert query["state"] == "browser-state-1"
    async with httpx.AsyncClient(base_url=site.url) as http:
        answer = await http.post(
            "/am/oauth2/access_token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": site.client.redirect_uri,
                "code_verifier": verifier,
            },
            headers={"Authorization": site.client.basic},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"


async def test_a_failed_login_shows_why_and_keeps_the_login(site: Site, page: Page) -> None:
    await page.goto(site.authorize_url())
    await page.get_by_label("Email or login").fill(site.login)
    await page.get_by_label("Password").fill("not my password")
    await page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text("The login or the password is wrong.")
    await expect(page.get_by_label("Email or login")).to_have_value(site.login)
    await expect(page.get_by_label("Password")).to_have_value("")
    assert await page.get_by_label("Password").get_attribute("aria-describedby") == "login-error"
    assert not site.receiver.targets

    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Allow My Peugeot?")).to_be_visible()


async def test_the_keyboard_alone_signs_in_and_every_field_has_a_label(
    site: Site, page: Page
) -> None:
    await page.goto(site.authorize_url())
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
              .filter(e => e.type !== 'hidden')
              .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim() : e.labels.length === 0)
              .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
    focused = "() => document.activeElement && document.activeElement.id"
    assert await page.evaluate(focused) == "login"  # the first field has the focus
    await page.keyboard.type(site.login)
    await page.keyboard.press("Tab")
    assert await page.evaluate(focused) == "password"
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Allow My Peugeot?")).to_be_visible()
    await page.keyboard.press("Tab")
    name = "() => document.activeElement && document.activeElement.textContent"
    assert await page.evaluate(name) == "Allow"
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{site.client.redirect_uri}?**")
    assert len(landed(site, page)["code"]) == 36


async def test_an_unregistered_redirect_uri_stays_on_an_error_page(site: Site, page: Page) -> None:
    await page.goto(site.authorize_url(redirect_uri="http://127.0.0.1:9/elsewhere"))
    await expect(page.get_by_role("heading", name="This sign-in link is not valid")).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("not registered")
    assert urlsplit(page.url).path == "/am/oauth2/authorize"
    assert not site.receiver.targets
