"""IPv6 addresses that carry a private IPv4 address are refused as webhook targets.

NAT64, 6to4, Teredo, IPv4-mapped and IPv4-compatible addresses reach (or pass through) the IPv4
address inside them, so ``[64:ff9b::a9fe:a9fe]`` is the cloud metadata service. Both faces refuse
them when a callback is created or replaced, and the delivery side refuses a name that resolves
to one. These rules live in the target check and the sender, not in storage: one engine is
enough.
"""

from __future__ import annotations

from typing import Any

import pytest
from delivery_flow import delivery_flow
from test_delivery_security import FixedResolver

from conftest import CALLBACK, Tenant, create_callback
from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from user_face import V4, user_stage

SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

PRIVATE_INSIDE = [
    "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "https://[64:ff9b:1::a00:1]/hook",  # local-use NAT64
    "https://[2002:a00:1::]/hook",  # 6to4 around 10.0.0.1
    "https://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
    "https://[::a00:1]/hook",  # IPv4-compatible 10.0.0.1
    "https://[::ffff:10.0.0.1]/hook",  # IPv4-mapped
    "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",  # Teredo, client 10.0.0.1
]
"""Refused unless private webhooks are allowed."""

METADATA_INSIDE = [
    "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64
    "https://[2002:a9fe:a9fe::]/latest/meta-data",  # 6to4
    "https://[::a9fe:a9fe]/latest/meta-data",  # IPv4-compatible
    "https://[2001:0:4136:e378:8000:63bf:5601:5601]/latest",  # Teredo
]
"""Refused even with private webhooks allowed."""


def _fleet_body(target: str) -> dict[str, Any]:
    return {**CALLBACK, "callback": {"webhook": {"target": target, "name": "x"}}}


def _user_body(target: str) -> dict[str, Any]:
    return {"type": ["Remote"], "callback": {"webhook": {"name": "x", "target": target}}}


def _assert_refused(answer: Any, target: str) -> None:
    assert answer.status_code == 400, (target, answer.text)
    data = answer.json()
    assert data["code"] == ErrorCode.INVALID_WEBHOOK_TARGET.code, (target, data)
    assert "callback.webhook.target" in data["message"], (target, data)
    assert "carries the IPv4 address" in data["message"] or "64:ff9b:1::" in target, data


@SQLITE_ONLY
async def test_the_fleet_face_refuses_them_on_create_and_replace(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    path = f"{tenant.fleet}/remote/callbacks"
    for target in PRIVATE_INSIDE + METADATA_INSIDE:
        _assert_refused(await tenant.http.post(path, json=_fleet_body(target)), target)
        _assert_refused(await tenant.http.put(f"{path}/{cbid}", json=_fleet_body(target)), target)
    listed = await tenant.http.get(path)
    assert [c["id"] for c in listed.json()["_embedded"]["callbacks"]] == [cbid]
    kept = (await tenant.http.get(f"{path}/{cbid}")).json()
    assert kept["subscribe"]["callback"]["webhook"]["target"] == "https://hooks.example.com/keyfob"


@SQLITE_ONLY
async def test_the_user_face_refuses_them_on_create_and_replace(
    db: Database, clock: FakeClock
) -> None:
    path = f"{V4}/user/callbacks"
    async with user_stage(db, clock) as stage:  # private webhooks allowed: metadata stays out
        created = await stage.http.post(path, json=_user_body("https://ha.example.com/hook"))
        assert created.status_code == 202, created.text
        cbid = created.json()["callbackId"]
        for target in METADATA_INSIDE:
            _assert_refused(await stage.http.post(path, json=_user_body(target)), target)
            _assert_refused(await stage.http.put(f"{path}/{cbid}", json=_user_body(target)), target)
        listed = (await stage.http.get(path)).json()["_embedded"]["callbacks"]
        kept = (await stage.http.get(f"{path}/{cbid}")).json()
    assert [c["id"] for c in listed] == [cbid]
    assert kept["subscribe"]["callback"]["webhook"]["target"] == "https://ha.example.com/hook"


@SQLITE_ONLY
@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "::ffff:127.0.0.1", "::7f00:1"])
async def test_a_name_resolving_to_one_is_refused_at_delivery(
    db: Database, clock: FakeClock, address: str
) -> None:
    resolver = FixedResolver(address)
    public_only = {"allow_private_webhooks": False}
    async with delivery_flow(
        db, clock, delivery=public_only, policy=TargetPolicy(), resolver=resolver
    ) as flow:
        cbid = (await flow.callback("https://hooks.example.com/hook"))["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        [delivery] = await flow.deliveries(cbid)
        [attempt] = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert resolver.asked == ["hooks.example.com"]
    assert attempt["errorClass"] == "refused_address"
    assert attempt["statusCode"] is None
    assert delivery["state"] == "pending"
