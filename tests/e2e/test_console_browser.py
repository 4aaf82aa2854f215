"""The console in a real browser: Debian's chromium driven by Playwright, against keyfob under
uvicorn with the dispatcher and a simulated fleet in process (cars that take their time).

What a person sees is asserted: signing in, finding a car by its VIN, locking it and watching
the timeline reach Done without reloading; a wrong login; the remote form used with the
keyboard alone, and a label on every field; a callback created against a broken webhook,
its failed attempts in the delivery log, the webhook fixed and the notification replayed. The
page's security policy must let its own style sheet and script run and block nothing (the
browser's complaints fail the test). The timeline is photographed into
``docs/console-timeline.png`` for the README.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Response, expect

from browser_support import launch_chromium, loopback_socket, serve, url_of
from conftest import Tenant, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.runtime.delivery_role import delivery_role
from keyfob.store import migrate
from keyfob.store.engine import Database
from vehicle_support import callback_for_all, embedded, until_done

pytestmark = pytest.mark.browser
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console-timeline.png"
WRONG = "The login, password or client id is wrong."


@dataclass
class Site:
    url: str
    tenant: Tenant
    callback_id: str


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    database = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
    await migrate.upgrade(database)
    sock = loopback_socket()
    # A car reacts in a fraction of the realistic time: a lock takes about a second.
    async with embedded(database, sim_speed=0.4, public_url=url_of(sock)) as (app, tenant):
        callback_id = await callback_for_all(tenant)
        async with serve(app, sock) as url:
            yield Site(url, tenant, callback_id)
    await database.dispose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as found:
        yield found


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    complaints: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        # Failed loads are judged by their response below (a 401 page is meant to be one).
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


async def sign_in(page: Page, site: Site, password: str | None = None) -> None:
    await page.goto(f"{site.url}/console/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Login").fill(site.tenant.login)
    await page.get_by_label("Password").fill(password or site.tenant.password)
    await page.get_by_label("Client id").fill(site.tenant.client_id)
    await page.get_by_role("button", name="Sign in").click()


async def test_lock_a_car_found_by_vin_and_watch_its_timeline_reach_done(
    site: Site, page: Page
) -> None:
    car = site.tenant.vehicles["Thermic"]
    path = f"{site.tenant.fleet}/vehicles/{car.id}/callbacks/{site.callback_id}/remotes"
    unlocked = await site.tenant.http.post(path, json={"door": {"state": "Unlocked"}})
    await until_done(site.tenant, f"{path}/{unlocked.json()['remoteActionId']}", timeout=30)
    await sign_in(page, site)
    await expect(page.get_by_role("heading", name="alice fleet")).to_be_visible()
    button = page.get_by_role("button", name="Search")
    background = await button.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(239, 239, 239)")  # the style sheet loaded
    await page.get_by_label("VIN contains").fill(car.vin[-6:])
    await button.click()
    await expect(page.get_by_role("link", name=car.vin)).to_have_count(1)
    await expect(page.locator("#count")).to_contain_text("1 vehicle whose VIN contains")
    await page.get_by_role("link", name=car.vin).click()

    await expect(page.get_by_role("heading", name=car.vin)).to_be_visible()
    doors = page.get_by_role("form", name="Doors")
    await doors.get_by_label("State").select_option("Locked")
    async with page.expect_navigation() as landing:
        await doors.get_by_role("button", name="Send doors").click()
    served = await (await landing.value).text()  # the timeline as the server rendered it
    await expect(page.get_by_role("heading", name="Doors")).to_be_visible()
    timeline = page.locator("#timeline")
    await expect(timeline.locator("li").first).to_contain_text("Pending · Accepted")
    await expect(timeline.locator("li.done")).to_contain_text("Done · Success", timeout=20_000)
    await expect(page.locator("#live")).to_have_text("Finished.")
    assert "Done · " not in served, "Done was already there: the page did not show it live"
    steps = await timeline.locator(".step").all_text_contents()
    assert steps[0] == "Pending · Accepted"
    assert "Pending · SentToVehicle" in steps
    await page.screenshot(path=str(SCREENSHOT), full_page=True)


async def test_a_wrong_login_says_so_and_opens_nothing(site: Site, page: Page) -> None:
    await sign_in(page, site, password="not the password")
    await expect(page.get_by_role("alert")).to_have_text(WRONG)
    await expect(page.get_by_label("Login")).to_have_value(site.tenant.login)
    await expect(page.get_by_label("Password")).to_have_value("")
    assert await page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    await page.goto(f"{site.url}/console/fleets/{site.tenant.fleet_id}")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_the_remote_form_works_from_the_keyboard_and_every_field_has_a_label(
    site: Site, page: Page
) -> None:
    await sign_in(page, site)
    car = site.tenant.vehicles["Electric"]
    await page.goto(f"{site.url}/console/fleets/{site.tenant.fleet_id}/vehicles/{car.id}")
    unlabelled: list[Any] = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
              .filter(e => e.type !== 'hidden')
              .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim() : e.labels.length === 0)
              .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
    focused = "() => document.activeElement && document.activeElement.id"
    for _ in range(80):  # Tab through the page until the doors' state field has the focus
        await page.keyboard.press("Tab")
        if await page.evaluate(focused) == "f-door-state":
            break
    assert await page.evaluate(focused) == "f-door-state"
    await page.keyboard.press("ArrowDown")
    assert await page.locator("#f-door-state").input_value() == "Locked"
    await page.keyboard.press("Tab")
    assert await page.evaluate(focused) == "label-door"
    await page.keyboard.type("from the keyboard")
    await page.keyboard.press("Tab")
    name = "() => document.activeElement && document.activeElement.textContent"
    assert await page.evaluate(name) == "Send doors"
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("label “from the keyboard”")).to_be_visible()
    await expect(page.locator("#timeline li.done")).to_contain_text("Done", timeout=20_000)

    await page.go_back()
    charging = page.get_by_role("form", name="Charging")
    await charging.get_by_label("Next delayed time").fill("tonight")
    await charging.get_by_role("button", name="Send charging").click()
    field = page.locator("#f-charging-schedule-nextDelayedTime")
    assert await field.get_attribute("aria-invalid") == "true"
    message = page.locator("#err-f-charging-schedule-nextDelayedTime")
    await expect(message).to_contain_text("must be an RFC 3339 timestamp")
    assert "err-f-charging-schedule-nextDelayedTime" in (
        await field.get_attribute("aria-describedby") or ""
    )


@dataclass
class Hook:
    """A loopback webhook receiver answering every POST with ``status``."""

    url: str
    status: int
    posts: int = 0


@contextlib.asynccontextmanager
async def hook(status: int) -> AsyncIterator[Hook]:
    sock = loopback_socket()
    found = Hook(f"{url_of(sock)}/keyfob", status)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                found.posts += 1
                writer.write(
                    b"HTTP/1.1 %d Status\r\ncontent-length: 2\r\n\r\nno" % found.status
                    if found.status != 200
                    else b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, sock=sock)
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class HookSite:
    url: str
    tenant: Tenant
    broken: Hook
    working: Hook


@pytest.fixture
async def hook_site(tmp_path: Path) -> AsyncIterator[HookSite]:
    """keyfob with its delivery worker (no vehicles needed: Accepted is notified at once)."""
    database = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
    await migrate.upgrade(database)
    sock = loopback_socket()
    settings = make_settings(
        database.url, public_url=url_of(sock), delivery={"allow_private_webhooks": True}
    )
    app = create_app(
        settings, database=database, clock=utcnow, roles=[delivery_role], announce=lambda _: None
    )
    async with app.router.lifespan_context(app), hook(500) as broken, hook(200) as working:
        tenant = await make_tenant(app, database, "alice", utcnow())
        async with serve(app, sock) as url:
            yield HookSite(url, tenant, broken, working)
        await tenant.http.aclose()
    await database.dispose()


async def test_break_a_webhook_watch_it_fail_then_fix_it_and_replay(
    hook_site: HookSite, page: Page
) -> None:
    site = hook_site
    await sign_in(page, Site(site.url, site.tenant, ""))
    await page.get_by_role("link", name="Callbacks").click()
    new = page.get_by_role("form", name="New callback")
    await new.get_by_label("Label").fill("ops")
    await new.get_by_label("Webhook name").fill("ops hook")
    await new.get_by_label("Webhook URL").fill(site.broken.url)
    await new.get_by_label("Horn").check()
    await new.get_by_label("Retry policy").select_option("None")
    await new.get_by_label("Seconds between tries").fill("1")
    await new.get_by_role("button", name="Create callback").click()
    await expect(page.get_by_role("heading", name="Callback created")).to_be_visible()
    await expect(page.locator("#secret")).to_contain_text("whsec_")
    await page.get_by_role("link", name="Go to the callback").click()
    callback_id = page.url.rsplit("/", 1)[1]

    car = site.tenant.vehicles["Electric"].id
    sent = await site.tenant.http.post(
        f"{site.tenant.fleet}/vehicles/{car}/callbacks/{callback_id}/remotes",
        json={"horn": {"state": "Activated"}},
    )
    assert sent.status_code == 202, sent.text
    # The log refreshes itself: the failed attempts appear without reloading the page.
    await page.evaluate("() => { window.sameDocument = true; }")
    await expect(page.get_by_role("cell", name="abandoned", exact=True)).to_be_visible(
        timeout=15_000
    )
    assert await page.evaluate("() => window.sameDocument === true")
    attempts = page.get_by_role("table", name="Delivery attempts")
    await expect(attempts.get_by_role("cell", name="500", exact=True).first).to_be_visible()
    await expect(attempts.get_by_role("cell", name="failed", exact=True).first).to_be_visible()
    assert site.broken.posts >= 1

    await page.get_by_text("Settings", exact=True).click()
    settings = page.get_by_role("form", name="Settings")
    await settings.get_by_label("Webhook URL").fill(site.working.url)
    await settings.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await page.get_by_role("button", name="Replay failed").click()
    await expect(page.get_by_role("status")).to_have_text("Replayed 1 notification.")
    sent_log = page.get_by_role("table", name="Notifications")
    await expect(sent_log.get_by_role("cell", name="delivered", exact=True)).to_be_visible(
        timeout=15_000
    )
    await expect(attempts.get_by_role("cell", name="200", exact=True)).to_be_visible()
    assert site.working.posts == 1
