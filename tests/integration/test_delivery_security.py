"""Signed notifications (Standard Webhooks) and the SSRF rules for webhook targets."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from delivery_flow import delivery_flow, serve
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from conftest import CALLBACK, Tenant
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import FakeClock, isoformat, utcnow
from keyfob.store.engine import Database

DAY = 24 * 3600


class FixedResolver(AbstractResolver):
    """Answers every name with one address, as a DNS server under someone else's control could."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": self.address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def _signatures(request: dict[str, Any]) -> list[str]:
    signatures: str = request["headers"]["webhook-signature"]
    return signatures.split(" ")


def _expected(secret: str, request: dict[str, Any]) -> str:
    """The signature ``secret`` gives this request, computed by the reference library."""
    headers = request["headers"]
    stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    return Webhook(secret).sign(headers["webhook-id"], stamp, request["raw"].decode())


# -- signatures -------------------------------------------------------------------------------


async def test_notifications_verify_with_the_secret_given_once_at_creation(
    db: Database, clock: FakeClock
) -> None:
    clock.now = utcnow()  # the reference verifier checks timestamps against the real time
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = lambda n: 500 if n == 1 else 200
        created = await flow.callback()
        shown = await flow.tenant.http.get(flow.path(created["callbackId"]))
        await flow.remote(created["callbackId"])
        await flow.drain()
        await flow.after(10)
        other = (await flow.callback())["secret"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert secret not in shown.text, "the secret is shown once, at creation"
    first, retry = flow.hook.requests
    for request in (first, retry):
        assert Webhook(secret).verify(request["raw"], request["headers"]) == request["json"]
    assert first["headers"]["webhook-id"] == retry["headers"]["webhook-id"]
    assert (
        int(retry["headers"]["webhook-timestamp"]) - int(first["headers"]["webhook-timestamp"])
        == 10
    )
    tampered = first["raw"].replace(b"Accepted", b"Rejected")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, first["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(first["raw"], first["headers"])


async def test_rotation_signs_with_both_secrets_until_the_grace_ends(
    db: Database, clock: FakeClock
) -> None:
    clock.now = utcnow()
    async with delivery_flow(db, clock) as flow:
        created = await flow.callback()
        cbid, old = created["callbackId"], created["secret"]
        rotated_at = clock()
        rotated = await flow.tenant.http.post(flow.path(cbid) + "/secret/rotate")
        rid = await flow.remote(cbid)
        await flow.drain()
        flow.clock.advance(DAY + 1)
        await flow.done(rid)
        await flow.drain()
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    grace_end = rotated.json()["previousSecretValidUntil"]
    assert grace_end == isoformat(rotated_at + timedelta(seconds=DAY))
    during, after = flow.hook.requests
    assert len(_signatures(during)) == 2
    for secret in (old, new):
        Webhook(secret).verify(during["raw"], during["headers"])
    assert _signatures(after) == [_expected(new, after)]
    assert _expected(old, after) not in _signatures(after)


# -- where notifications may go ---------------------------------------------------------------
# These rules live in the sender and the target check, not in storage: one engine is enough.

SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


REFUSED_WITHOUT_ALLOWLIST = [
    "http://hooks.example.com/keyfob",
    "https://10.1.2.3/keyfob",
    "https://192.168.0.10/keyfob",
    "https://127.0.0.1/keyfob",
    "https://[::1]/keyfob",
    "https://localhost/keyfob",
    "https://169.254.169.254/latest/meta-data",
]


@SQLITE_ONLY
async def test_unsafe_targets_are_refused_at_creation(tenant: Tenant) -> None:
    for target in REFUSED_WITHOUT_ALLOWLIST:
        body = {**CALLBACK, "callback": {"webhook": {"target": target, "name": "x"}}}
        answer = await tenant.http.post(f"{tenant.fleet}/remote/callbacks", json=body)
        assert answer.status_code == 400, target
        assert answer.json()["code"] == 40008, target
        assert "callback.webhook.target" in answer.json()["message"], target


@SQLITE_ONLY
async def test_metadata_and_link_local_stay_refused_with_private_webhooks_allowed(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        for target in (
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/latest",
            "http://169.254.10.10/hook",
        ):
            body = {**CALLBACK, "callback": {"webhook": {"target": target, "name": "x"}}}
            answer = await flow.tenant.http.post(f"{flow.tenant.fleet}/remote/callbacks", json=body)
            assert answer.status_code == 400, target
            assert "callback.webhook.target" in answer.json()["message"], target
        allowed = await flow.callback("http://10.1.2.3/hook")
    assert allowed["status"] == "Running", "private ranges are what the flag is for"


@SQLITE_ONLY
async def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    db: Database, clock: FakeClock
) -> None:
    resolver = FixedResolver("127.0.0.1")
    public_only = {"allow_private_webhooks": False}
    async with delivery_flow(
        db, clock, delivery=public_only, policy=TargetPolicy(), resolver=resolver
    ) as flow:
        port = flow.hook.url.split(":")[2].split("/")[0]
        cbid = (await flow.callback(f"https://hooks.example.com:{port}/hook"))["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        [delivery] = await flow.deliveries(cbid)
        [attempt] = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert resolver.asked == ["hooks.example.com"]
    assert flow.hook.requests == [], "the receiver behind 127.0.0.1 is never reached"
    assert attempt["errorClass"] == "refused_address"
    assert attempt["statusCode"] is None
    assert delivery["state"] == "pending", "a refusal is a failed attempt: the policy retries"


@SQLITE_ONLY
async def test_an_allowlisted_name_is_dialled_at_the_address_it_resolved_to(
    db: Database, clock: FakeClock
) -> None:
    resolver = FixedResolver("127.0.0.1")
    allowlist = {"allow_private_webhooks": False, "allowed_hosts": ["receiver.test"]}
    policy = TargetPolicy(allow_hosts=frozenset({"receiver.test"}))
    async with delivery_flow(
        db, clock, delivery=allowlist, policy=policy, resolver=resolver
    ) as flow:
        port = flow.hook.url.split(":")[2].split("/")[0]
        cbid = (await flow.callback(f"http://receiver.test:{port}/hook"))["callbackId"]
        await flow.remote(cbid)
        assert await flow.drain() == 1
        [delivery] = await flow.deliveries(cbid)
    assert resolver.asked == ["receiver.test"]
    assert len(flow.hook.requests) == 1
    assert delivery["state"] == "delivered"


@SQLITE_ONLY
async def test_a_private_address_is_refused_when_the_operator_no_longer_allows_it(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock, policy=TargetPolicy()) as flow:
        cbid = (await flow.callback())["callbackId"]  # accepted while private webhooks were on
        await flow.remote(cbid)
        await flow.drain()
        [delivery] = await flow.deliveries(cbid)
        [attempt] = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert flow.hook.requests == []
    assert attempt["errorClass"] == "refused_address"


@SQLITE_ONLY
async def test_redirects_are_not_followed(db: Database, clock: FakeClock) -> None:
    paths: list[str] = []

    async def redirecting(request: web.Request) -> web.Response:
        paths.append(request.path)
        if request.path == "/hook":
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return web.Response(text="followed")

    async with serve(redirecting) as base, delivery_flow(db, clock) as flow:
        retry = {"policy": "None", "retryDelay": 10}
        cbid = (await flow.callback(base + "/hook", retryPolicy=retry))["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        await flow.after(10)
        [delivery] = await flow.deliveries(cbid)
        log = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert paths == ["/hook", "/hook"]
    assert [(a["statusCode"], a["errorClass"]) for a in log] == [(307, "http_307")] * 2
    assert delivery["state"] == "abandoned"
