"""The sender against a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from keyfob import __version__
from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import KeyfobError
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.policy import Abandon, Expire
from keyfob.notifications.sender import WebhookSender
from tls_support import authority, client_context

BODY = b'{"callbackId":"cb","attributes":[],"events":[]}'
LOCAL = TargetPolicy(allow_private=True)


@dataclass
class Receiver:
    server: TestServer
    seen: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)
    active: int = 0
    most_active: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


def receiver_app(state: Receiver) -> web.Application:
    async def record(request: web.Request) -> None:
        state.seen.append(request)
        state.bodies.append(await request.read())
        state.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        response = web.Response(status=202, text="thanks")
        response.set_cookie("session", "abc")
        return response

    async def fail(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, body="é" * 3000)  # 6000 bytes of two-byte characters

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def moved(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/ok")

    async def busy(request: web.Request) -> web.Response:
        await record(request)
        state.active += 1
        state.most_active = max(state.most_active, state.active)
        await asyncio.sleep(0.05)
        state.active -= 1
        return web.Response(text="ok")

    app = web.Application()
    for path, handler in [
        ("/ok", ok),
        ("/fail", fail),
        ("/slow", slow),
        ("/moved", moved),
        ("/busy", busy),
    ]:
        app.router.add_post(path, handler)
    return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(server=None)  # type: ignore[arg-type]
    state.server = TestServer(receiver_app(state), host="127.0.0.1")
    await state.server.start_server()
    yield state
    await state.server.close()


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    client = WebhookSender(LOCAL, timeout=0.2)
    yield client
    await client.close()


async def test_a_2xx_is_delivered_with_the_body_headers_and_query(
    receiver: Receiver, sender: WebhookSender
) -> None:
    outcome = await sender.post(
        receiver.url("/ok?fixed=1"),
        query=[("X-RemoteType", "Horn"), ("vin", "VF3ABCDE0FG123456")],
        headers={"Authorization": "Bearer t0ken", "content-type": "text/plain"},
        body=BODY,
    )
    assert outcome.delivered
    assert (outcome.status_code, outcome.error_class, outcome.response_excerpt) == (
        202,
        None,
        "thanks",
    )
    assert outcome.latency_ms >= 0
    request = receiver.seen[0]
    assert receiver.bodies == [BODY]
    assert list(request.query.items()) == [
        ("fixed", "1"),
        ("X-RemoteType", "Horn"),
        ("vin", "VF3ABCDE0FG123456"),
    ]
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.headers.getall("Content-Type") == ["application/json"]
    assert request.headers["User-Agent"] == f"keyfob/{__version__}"


async def test_a_500_fails_and_keeps_only_2_kib_of_the_answer(
    receiver: Receiver, sender: WebhookSender
) -> None:
    outcome = await sender.post(receiver.url("/fail"), query=[], headers={}, body=BODY)
    assert not outcome.delivered
    assert (outcome.status_code, outcome.error_class) == (500, "http_500")
    assert outcome.response_excerpt == "é" * 1024


async def test_a_slow_receiver_times_out(receiver: Receiver, sender: WebhookSender) -> None:
    outcome = await sender.post(receiver.url("/slow"), query=[], headers={}, body=BODY)
    assert (outcome.delivered, outcome.status_code, outcome.error_class) == (False, None, "timeout")
    assert 150 <= outcome.latency_ms < 1500


async def test_a_closed_port_is_a_connection_error(sender: WebhookSender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await sender.post(f"http://127.0.0.1:{port}/hook", query=[], headers={}, body=BODY)
    assert (outcome.delivered, outcome.error_class) == (False, "connect")
    assert outcome.detail


async def test_https_to_a_plain_http_server_is_a_tls_error(
    receiver: Receiver, sender: WebhookSender
) -> None:
    outcome = await sender.post(
        f"https://127.0.0.1:{receiver.server.port}/ok", query=[], headers={}, body=BODY
    )
    assert (outcome.delivered, outcome.error_class) == (False, "tls")


async def test_redirects_are_not_followed(receiver: Receiver, sender: WebhookSender) -> None:
    outcome = await sender.post(receiver.url("/moved"), query=[], headers={}, body=BODY)
    assert (outcome.delivered, outcome.status_code, outcome.error_class) == (False, 302, "http_302")
    assert [r.path for r in receiver.seen] == ["/moved"]


async def test_cookies_are_not_sent_back(receiver: Receiver, sender: WebhookSender) -> None:
    for _ in range(2):
        assert (await sender.post(receiver.url("/ok"), query=[], headers={}, body=BODY)).delivered
    assert "Cookie" not in receiver.seen[1].headers


async def test_connections_are_kept_alive(receiver: Receiver, sender: WebhookSender) -> None:
    for _ in range(4):
        assert (await sender.post(receiver.url("/ok"), query=[], headers={}, body=BODY)).delivered
    assert len(set(map(str, receiver.peers))) == 1


async def test_only_http_urls_are_posted(sender: WebhookSender) -> None:
    for url in ("ftp://127.0.0.1/hook", "/relative/hook", "http://"):
        outcome = await sender.post(url, query=[], headers={}, body=BODY)
        assert (url, outcome.error_class) == (url, "invalid_url")


async def test_per_host_concurrency_is_bounded(receiver: Receiver) -> None:
    client = WebhookSender(LOCAL, limit=50, limit_per_host=3)
    try:
        outcomes = await asyncio.gather(
            *(
                client.post(receiver.url("/busy"), query=[], headers={}, body=BODY)
                for _ in range(12)
            )
        )
    finally:
        await client.close()
    assert all(o.delivered for o in outcomes)
    assert receiver.most_active == 3


async def test_the_global_limit_bounds_every_host_together(receiver: Receiver) -> None:
    client = WebhookSender(LOCAL, limit=2, limit_per_host=20)
    try:
        await asyncio.gather(
            *(client.post(receiver.url("/busy"), query=[], headers={}, body=BODY) for _ in range(8))
        )
    finally:
        await client.close()
    assert receiver.most_active == 2


async def test_waiting_for_a_slot_does_not_count_towards_the_time_out(receiver: Receiver) -> None:
    client = WebhookSender(LOCAL, timeout=0.2, limit_per_host=1)
    try:
        outcomes = await asyncio.gather(
            *(client.post(receiver.url("/busy"), query=[], headers={}, body=BODY) for _ in range(8))
        )
    finally:
        await client.close()
    # Eight 50 ms answers one after the other take longer than the 200 ms time-out in all.
    assert [o.error_class for o in outcomes] == [None] * 8
    assert receiver.most_active == 1
    assert all(o.latency_ms < 200 for o in outcomes)


@pytest.mark.parametrize("setting", ["timeout", "limit", "limit_per_host"])
def test_bounds_must_be_positive(setting: str) -> None:
    with pytest.raises(KeyfobError, match=setting):
        WebhookSender(LOCAL, **{setting: 0})  # type: ignore[arg-type]


# --- SSRF -----------------------------------------------------------------------------------


class FakeDNS(AbstractResolver):
    """Answers every name with fixed addresses, so no real lookup or foreign traffic happens."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_loopback_is_refused_without_allow_private(receiver: Receiver) -> None:
    client = WebhookSender(TargetPolicy())
    try:
        literal = await client.post(receiver.url("/ok"), query=[], headers={}, body=BODY)
        by_name = await client.post(
            f"http://localhost:{receiver.server.port}/ok", query=[], headers={}, body=BODY
        )
    finally:
        await client.close()
    assert (literal.delivered, literal.error_class) == (False, "refused_address")
    assert (by_name.delivered, by_name.error_class) == (False, "refused_address")
    assert receiver.seen == []


async def test_allowlisted_host_skips_the_checks(receiver: Receiver) -> None:
    client = WebhookSender(TargetPolicy(allow_hosts=frozenset({"localhost"})))
    try:
        outcome = await client.post(
            f"http://localhost:{receiver.server.port}/ok", query=[], headers={}, body=BODY
        )
    finally:
        await client.close()
    assert outcome.delivered


async def test_metadata_address_is_refused_even_with_allow_private() -> None:
    dns = FakeDNS("169.254.169.254")
    client = WebhookSender(LOCAL, resolver=dns)
    try:
        literal = await client.post(
            "http://169.254.169.254/latest/meta-data", query=[], headers={}, body=BODY
        )
        by_name = await client.post("http://hooks.example.test/x", query=[], headers={}, body=BODY)
    finally:
        await client.close()
    assert (literal.error_class, by_name.error_class) == ("refused_address", "refused_address")
    assert dns.asked == ["hooks.example.test"]
    assert "169.254.169.254" in (by_name.detail or "")


async def test_one_forbidden_address_among_several_refuses_the_name(receiver: Receiver) -> None:
    client = WebhookSender(LOCAL, resolver=FakeDNS("127.0.0.1", "169.254.169.254"))
    try:
        outcome = await client.post(
            f"http://hooks.example.test:{receiver.server.port}/ok", query=[], headers={}, body=BODY
        )
    finally:
        await client.close()
    assert outcome.error_class == "refused_address"
    assert receiver.seen == []


async def test_the_connection_goes_to_the_checked_address(receiver: Receiver) -> None:
    client = WebhookSender(LOCAL, resolver=FakeDNS("127.0.0.1"))
    try:
        outcome = await client.post(
            f"http://hooks.example.test:{receiver.server.port}/ok", query=[], headers={}, body=BODY
        )
    finally:
        await client.close()
    assert outcome.delivered
    assert receiver.seen[0].host == f"hooks.example.test:{receiver.server.port}"


# --- injection and metrics ------------------------------------------------------------------


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS receiver on 127.0.0.1 with a certificate from a CA made for the test."""
    ca = authority(tmp_path, "hooks")
    issued = ca.issue("127.0.0.1", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    state = Receiver(server=None)  # type: ignore[arg-type]
    runner = web.AppRunner(receiver_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}/ok", ca.bundle
    await runner.cleanup()


async def test_https_is_delivered_to_a_certificate_the_trust_store_accepts(
    tls_receiver: tuple[str, Path],
) -> None:
    url, bundle = tls_receiver
    client = WebhookSender(LOCAL, tls=lambda: client_context(bundle))
    try:
        outcomes = [await client.post(url, query=[], headers={}, body=BODY) for _ in range(2)]
    finally:
        await client.close()
    assert [(o.delivered, o.status_code, o.response_excerpt) for o in outcomes] == [
        (True, 202, "thanks")
    ] * 2


async def test_https_to_an_unknown_authority_is_a_tls_error(
    tls_receiver: tuple[str, Path], sender: WebhookSender
) -> None:
    outcome = await sender.post(tls_receiver[0], query=[], headers={}, body=BODY)
    assert (outcome.delivered, outcome.error_class) == (False, "tls")
    assert "certificate" in (outcome.detail or "")


async def test_metrics_count_attempts_and_give_ups(receiver: Receiver) -> None:
    metrics = DeliveryMetrics()
    client = WebhookSender(LOCAL, metrics=metrics)
    try:
        await client.post(receiver.url("/ok"), query=[], headers={}, body=BODY)
        await client.post(receiver.url("/fail"), query=[], headers={}, body=BODY)
        await client.post(receiver.url("/fail"), query=[], headers={}, body=BODY)
    finally:
        await client.close()
    metrics.observe_decision(Abandon())
    metrics.observe_decision(Expire())
    metrics.set_queue(7, 42.5)
    text, content_type = metrics.render()
    page = text.decode()
    assert content_type.startswith("text/plain")
    assert 'keyfob_webhook_deliveries_total{outcome="delivered"} 1.0' in page
    assert 'keyfob_webhook_deliveries_total{outcome="failed"} 2.0' in page
    assert 'keyfob_webhook_deliveries_total{outcome="abandoned"} 1.0' in page
    assert 'keyfob_webhook_deliveries_total{outcome="expired"} 1.0' in page
    assert "keyfob_webhook_attempt_seconds_count 3.0" in page
    assert "keyfob_webhook_queue_depth 7.0" in page
    assert "keyfob_webhook_oldest_due_age_seconds 42.5" in page
    fresh = DeliveryMetrics().render()[0].decode()
    assert 'keyfob_webhook_deliveries_total{outcome="delivered"} 0.0' in fresh
