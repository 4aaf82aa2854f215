"""The console for end users in a real browser: the demo's end user signs in through keyfob's
own OAuth login pages, makes a callback, sends a horn to one of their cars and watches the
timeline reach Done without reloading; every field of their pages has a label.

keyfob runs under uvicorn with the demo provisioned as ``keyfob serve`` does it on an empty
database, its simulated cars in process (reacting in a fraction of the realistic time). The
browser and page (the browser's complaints fail the test) are the fleet console test's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from test_console_browser import browser, page  # noqa: F401 - the fixtures, shared

from browser_support import loopback_socket, serve, url_of
from conftest import make_settings
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import Database

pytestmark = pytest.mark.browser


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter(e => e.type !== 'hidden')
    .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim() : e.labels.length === 0)
    .map(e => e.outerHTML)"""
"""Every field a person fills or presses, without a name a screen reader can say."""


@dataclass
class DemoSite:
    url: str
    credentials: dict[str, Any]


@pytest.fixture
async def demo_site(tmp_path: Path) -> AsyncIterator[DemoSite]:
    database = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
    sock = loopback_socket()
    settings = make_settings(
        database.url,
        vehicles=4,
        sim_speed=0.4,
        public_url=url_of(sock),
        credentials_file=tmp_path / "demo.json",
    )
    provisioning = create_app(settings, database=database, clock=utcnow, announce=lambda _: None)
    async with provisioning.router.lifespan_context(provisioning):
        pass  # an empty database: the demo partner, cars, end user and app are made
    app = create_app(
        settings, database=database, clock=utcnow, roles=[vehicle_role], announce=lambda _: None
    )
    async with app.router.lifespan_context(app), serve(app, sock) as url:
        yield DemoSite(url, json.loads((tmp_path / "demo.json").read_text()))
    await database.dispose()


async def test_the_demo_driver_signs_in_sends_a_horn_and_watches_it_reach_done(
    demo_site: DemoSite,
    page: Page,  # noqa: F811 - the shared fixture
) -> None:
    user = demo_site.credentials["user"]
    car = user["vehicles"][0]
    await page.goto(f"{demo_site.url}/console/login")
    await page.get_by_role("link", name="Sign in as a driver").click()
    await expect(page.get_by_label("Brand")).to_have_value("clientsB2CPeugeot")
    await page.get_by_role("button", name="Continue to sign-in").click()
    await page.get_by_label("Email or login").fill(user["login"])
    await page.get_by_label("Password").fill(user["password"])
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Allow").click()

    await expect(page.get_by_role("heading", name="My vehicles")).to_be_visible()
    await expect(page.get_by_role("link", name=car["vin"])).to_be_visible()
    others = [
        v
        for v in demo_site.credentials["vehicles"]
        if v["vid"] not in {mine["id"] for mine in user["vehicles"]}
    ]
    await expect(page.get_by_role("link", name=others[0]["vin"])).to_have_count(0)

    await page.get_by_role("link", name="My callbacks").click()
    await page.get_by_label("Label").fill("phone")
    await page.get_by_label("Webhook name").fill("phone")
    await page.get_by_label("Webhook URL").fill("https://hooks.example.com/phone")
    await page.get_by_role("button", name="Create callback").click()
    await expect(page.locator("#secret")).to_contain_text("whsec_")
    await page.get_by_role("link", name="Go to the callback").click()
    await expect(page.get_by_role("button", name="Pause phone")).to_be_visible()
    assert await page.evaluate(UNLABELLED) == []

    await page.get_by_role("link", name="My vehicles").click()
    await page.get_by_role("link", name=car["vin"]).click()
    await expect(page.get_by_role("heading", name=car["vin"])).to_be_visible()
    assert await page.evaluate(UNLABELLED) == []
    horn = page.get_by_role("form", name="Horn")
    await horn.get_by_label("State").select_option("Activated")
    async with page.expect_navigation() as landing:
        await horn.get_by_role("button", name="Send horn").click()
    served = await (await landing.value).text()  # the timeline as the server rendered it
    await expect(page.get_by_role("heading", name="Horn")).to_be_visible()
    timeline = page.locator("#timeline")
    await expect(timeline.locator("li").first).to_contain_text("Pending · Accepted")
    await expect(timeline.locator("li.done")).to_contain_text("Done · Success", timeout=20_000)
    await expect(page.locator("#live")).to_have_text("Finished.")
    assert "Done · " not in served, "Done was already there: the page did not show it live"
