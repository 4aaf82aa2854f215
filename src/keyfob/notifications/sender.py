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
from collections.abc import Callable

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
_KNOWN_TARGETS = 1024
"""Checked target URLs kept per sender: a callback posts to one URL thousands of times."""
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
        self._checked: dict[str, tuple[URL, str]] = {}

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
            target, origin = self._target(url, query)
        except _NETWORK_ERRORS as error:
            return self._observed(classify(error=error, latency_ms=0))
        async with self._slots.hold(origin):
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

    def _target(self, url: str, query: list[tuple[str, str]]) -> tuple[URL, str]:
        """The URL to post to and its origin (the key of the per-host places)."""
        found = self._checked.get(url)
        if found is None:
            target = URL(url)
            if target.scheme not in _SCHEMES or not target.raw_host:
                raise aiohttp.InvalidURL(url, "must be an absolute http or https URL")
            # The policy is fixed for the sender's life, so a URL once allowed stays allowed
            # (names are still vetted by the resolver on every new connection).
            check_host(target.raw_host, self._policy)
            if len(self._checked) >= _KNOWN_TARGETS:
                self._checked.clear()
            origin = f"{target.scheme}://{target.host_port_subcomponent}"
            found = self._checked[url] = (target, origin)
        target, origin = found
        return (target.extend_query(query) if query else target), origin

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
        self._hosts: dict[str, _Host] = {}

    def hold(self, key: str) -> _Held:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(asyncio.Semaphore(self._per_host))
        host.users += 1
        return _Held(self, key, host, self._all)

    def _left(self, key: str, host: _Host) -> None:
        host.users -= 1
        if host.users == 0:
            del self._hosts[key]


class _Host:
    __slots__ = ("semaphore", "users")

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self.semaphore = semaphore
        self.users = 0


class _Held:
    """One request's places, taken on entry and given back on exit (a plain class: per POST)."""

    __slots__ = ("_all", "_host", "_key", "_slots", "_taken")

    def __init__(self, slots: _Slots, key: str, host: _Host, all_places: asyncio.Semaphore) -> None:
        self._slots, self._key, self._host, self._all = slots, key, host, all_places
        self._taken = 0

    async def __aenter__(self) -> None:
        try:
            # The host's place first: a request queued behind its own busy host holds no
            # place that requests to other hosts could use.
            await self._host.semaphore.acquire()
            self._taken = 1
            await self._all.acquire()
            self._taken = 2
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._taken == 2:
            self._all.release()
        if self._taken >= 1:
            self._host.semaphore.release()
        self._taken = 0
        self._slots._left(self._key, self._host)


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
