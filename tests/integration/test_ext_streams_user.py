"""The event streams on the user face: each notification as its ``Message``, the caller's only.

A real server on a loopback port; the user signed in for real (``user_support.make_user``).
Both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import Tenant, make_tenant
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from stream_support import make_app, serving, sse
from user_support import UserLogin, make_user

V4 = "/connectedcar/v4"


@dataclass
class User:
    login: UserLogin
    http: httpx.AsyncClient
    vehicle_id: str

    async def callback(self, attributes: list[dict[str, str]] | None = None) -> str:
        webhook: dict[str, Any] = {"name": "app", "target": "https://app.example.com/hook"}
        if attributes:
            webhook["attributes"] = attributes
        body = {"label": "my app", "type": ["Remote"], "callback": {"webhook": webhook}}
        answer = await self.http.post(f"{V4}/user/callbacks", json=body)
        assert answer.status_code == 202, answer.text
        callback_id: str = answer.json()["callbackId"]
        return callback_id

    async def remote(self, callback_id: str) -> str:
        path = f"{V4}/user/vehicles/{self.vehicle_id}/callbacks/{callback_id}/remotes"
        answer = await self.http.post(path, json={"door": {"state": "Locked"}})
        assert answer.status_code == 202, answer.text
        remote_id: str = answer.json()["remoteActionId"]
        return remote_id


@dataclass
class Stage:
    url: str
    ann: User
    ben: User


def user_over(url: str, login: UserLogin) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers=login.headers, params=login.params)


@pytest.fixture
async def stage(db: Database, clock: FakeClock) -> AsyncIterator[Stage]:
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant: Tenant = await make_tenant(app, db, "alice", clock())
        ctx = app.state.ctx
        electric, thermic = tenant.vehicles["Electric"].id, tenant.vehicles["Thermic"].id
        ann = await make_user(ctx, vehicle_ids=[electric])
        ben = await make_user(ctx, vehicle_ids=[thermic])
        async with user_over(url, ann) as a_http, user_over(url, ben) as b_http:
            yield Stage(url, User(ann, a_http, electric), User(ben, b_http, thermic))
        await tenant.http.aclose()


async def test_each_notification_arrives_as_its_message(stage: Stage) -> None:
    ann = stage.ann
    callback_id = await ann.callback([{"type": "Body", "key": "for", "value": "$Vin"}])
    path = f"{V4}/user/callbacks/{callback_id}/events"
    async with sse(ann.http, f"{path}/stream") as stream:
        posted = [await ann.remote(callback_id) for _ in range(2)]
        got = await stream.take(2)
    messages = [event.json() for event in got]
    for message in messages:
        assert_conforms("b2c-webhook", "Message", message)
        assert message["callbackId"] == callback_id
        assert message["type"] == "Remote"
    assert [m["remoteEvent"]["remoteActionId"] for m in messages] == posted
    assert messages[0]["remoteEvent"]["eventStatus"] == {"type": "Pending", "status": "Accepted"}
    assert messages[0]["attributes"][0]["key"] == "for"
    page = (await ann.http.get(path)).json()
    assert [item["id"] for item in page["items"]] == [event.id for event in got]
    assert [item["data"] for item in page["items"]] == messages


async def test_resuming_loses_nothing(stage: Stage) -> None:
    ann = stage.ann
    callback_id = await ann.callback()
    url = f"{V4}/user/callbacks/{callback_id}/events/stream"
    async with sse(ann.http, url) as stream:
        await ann.remote(callback_id)
        [first] = await stream.take(1)
    meanwhile = [await ann.remote(callback_id) for _ in range(2)]
    async with sse(ann.http, url, last_event_id=first.id) as stream:
        missed = await stream.take(2)
    assert [e.json()["remoteEvent"]["remoteActionId"] for e in missed] == meanwhile


async def test_another_users_callback_is_not_found(stage: Stage) -> None:
    callback_id = await stage.ann.callback()
    path = f"{V4}/user/callbacks/{callback_id}/events"
    for tail in ("", "/stream"):
        answer = await stage.ben.http.get(path + tail)
        assert answer.status_code == 404, answer.text
    async with httpx.AsyncClient(base_url=stage.url) as nobody:
        realm = {"x-introspect-realm": stage.ann.login.headers["x-introspect-realm"]}
        anonymous = await nobody.get(path, params=stage.ann.login.params, headers=realm)
    assert anonymous.status_code == 401
