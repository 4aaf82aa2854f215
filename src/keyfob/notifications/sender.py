"""The one place that POSTs a notification, turning whatever happens into an ``Outcome``.

A single ``aiohttp`` session is shared by every delivery so connections to a receiver are kept
alive and reused. The work is bounded twice: ``limit`` requests in flight in all,
``limit_per_host`` towards any one receiver, so one slow tenant cannot take every slot. A request
waits for its places before its time-out starts, so queueing behind a busy receiver is never
mistaken for that receiver being slow (the connector carries the same limits as a backstop).
Names are resolved through ``SafeResolver``; redirects are never followed (a 3XX is a failed
attempt, and following one would skip the address check); cookies are never kept. Nothing
network-related escapes ``post``: the worker records and schedules, it does not catch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from keyfob import __version__
from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outcome import EXCERPT_BYTES, Outcome, RefusedAddress, classify
from keyfob.notifications.resolver import SafeResolver, check_host

SessionFactory = Callable[[SafeResolver], aiohttp.ClientSession]
"""Builds the session; it is handed the SSRF resolver to put in its connector."""

USER_AGENT = f"keyfob/{__version__}"
_SCHEMES = frozenset({"http", "https"})
_NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError, RefusedAddress, ValueError)


class WebhookSender:
    """POSTs bodies to webhook targets; create it and use it inside one running event loop."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        timeout: float = 10.0,
        limit: int = 200,
        limit_per_host: int = 20,
        session_factory: SessionFactory | None = None,
        resolver: aiohttp.abc.AbstractResolver | None = None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        """``resolver`` replaces the system resolver underneath the SSRF checks (tests fake DNS)."""
        for name, value in (
            ("timeout", timeout),
            ("limit", limit),
            ("limit_per_host", limit_per_host),
        ):
            if not value > 0:
                raise KeyfobError(ErrorCode.BAD_REQUEST, f"{name} must be positive, got {value}")
        self._policy = policy
        self._timeout = timeout
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._factory = session_factory or self._default_session
        self._resolver = SafeResolver(policy, resolver)
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._slots = _Slots(limit, limit_per_host)

    def _default_session(self, resolver: SafeResolver) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._limit_per_host, resolver=resolver
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._factory(self._resolver)
        return self._session

    async def post(
        self, url: str, *, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> Outcome:
        """One attempt. Never raises for network trouble: that comes back as a failed Outcome."""
        try:
            target = self._target(url, query)
        except _NETWORK_ERRORS as error:
            return self._observed(classify(error=error, latency_ms=0))
        async with self._slots.hold(f"{target.scheme}://{target.host_port_subcomponent}"):
            return self._observed(await self._attempt(target, headers, body))

    async def _attempt(self, target: URL, headers: dict[str, str], body: bytes) -> Outcome:
        started = time.perf_counter()
        try:
            async with self._get_session().post(
                target, data=body, headers=_request_headers(headers), allow_redirects=False
            ) as response:
                answer = await _read_excerpt(response)
                return classify(status=response.status, body=answer, latency_ms=_since(started))
        except _NETWORK_ERRORS as error:
            return classify(error=error, latency_ms=_since(started))

    def _observed(self, outcome: Outcome) -> Outcome:
        if self._metrics is not None:
            self._metrics.observe_attempt(outcome)
        return outcome

    def _target(self, url: str, query: list[tuple[str, str]]) -> URL:
        target = URL(url)
        if target.scheme not in _SCHEMES or not target.raw_host:
            raise aiohttp.InvalidURL(url, "must be an absolute http or https URL")
        check_host(target.raw_host, self._policy)
        return target.extend_query(query) if query else target

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._resolver.close()


class _Slots:
    """Places for requests in flight, in all and per target; a host's entry lives while used."""

    def __init__(self, limit: int, per_host: int) -> None:
        self._all = asyncio.Semaphore(limit)
        self._per_host = per_host
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        semaphore, users = self._hosts.get(key, (asyncio.Semaphore(self._per_host), 0))
        self._hosts[key] = (semaphore, users + 1)
        try:
            # The host's place first: a request queued behind its own busy host holds no
            # place that requests to other hosts could use.
            async with semaphore, self._all:
                yield
        finally:
            semaphore, users = self._hosts[key]
            if users == 1:
                del self._hosts[key]
            else:
                self._hosts[key] = (semaphore, users - 1)


def _request_headers(headers: dict[str, str]) -> dict[str, str]:
    """The caller's headers with ours for the body type; theirs cannot change what the body is."""
    kept = {key: value for key, value in headers.items() if key.lower() != "content-type"}
    kept["Content-Type"] = "application/json"
    return kept


async def _read_excerpt(response: aiohttp.ClientResponse) -> bytes:
    """At most ``EXCERPT_BYTES`` of the answer; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    while size < EXCERPT_BYTES:
        chunk = await response.content.read(EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
