"""The one place that POSTs a notification, turning whatever happens into an ``Outcome``.

One ``Http1Client`` is shared by every delivery, so connections to a receiver are kept alive and
reused. The work is bounded twice: ``limit`` requests in flight in all, ``limit_per_host``
towards any one receiver, so one slow tenant cannot take every slot. A request waits for its
places before its time-out starts, so queueing behind a busy receiver is never mistaken for that
receiver being slow. Names are resolved through ``SafeResolver``; IP literals are checked here.
Redirects are never followed (a 3XX is a failed attempt, and following one would skip the
address check); cookies are never kept. Nothing network-related escapes ``post``: the worker
records and schedules, it does not catch.

The request is written here, whole: the caller's headers, then ours for what frames the body
(``Host`` unless the caller set one, ``Content-Type``, ``Content-Length``); a header name or
value that could break the framing (a newline, a colon in the name) fails the attempt as
``invalid_request`` instead of being sent.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable

from yarl import URL

from keyfob import __version__
from keyfob.callbacks.attributes import HEADER_NAME
from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.addresses import parse_ip
from keyfob.notifications.http1 import BadAnswer, Http1Client, Origin
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outcome import (
    EXCERPT_BYTES,
    InvalidTarget,
    Outcome,
    RefusedAddress,
    classify,
)
from keyfob.notifications.resolver import Resolver, SafeResolver, check_host

USER_AGENT = f"keyfob/{__version__}"
_SCHEMES = frozenset({"http", "https"})
_KNOWN_TARGETS = 1024
"""Checked target URLs kept per sender: a callback posts to one URL thousands of times."""
_NETWORK_ERRORS = (OSError, asyncio.TimeoutError, BadAnswer, RefusedAddress, ValueError)
_OURS = frozenset({"content-type", "content-length", "transfer-encoding", "connection"})
"""Headers that frame the request: ours, whatever the callback's attributes say."""
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")


class WebhookSender:
    """POSTs bodies to webhook targets; create it and use it inside one running event loop."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        timeout: float = 10.0,
        limit: int = 200,
        limit_per_host: int = 20,
        resolver: Resolver | None = None,
        tls: Callable[[], ssl.SSLContext] = ssl.create_default_context,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        """``resolver`` replaces the system resolver underneath the SSRF checks (tests fake DNS);
        ``tls`` makes the context HTTPS targets are checked with (the system's trust store)."""
        for name, value in (
            ("timeout", timeout),
            ("limit", limit),
            ("limit_per_host", limit_per_host),
        ):
            if not value > 0:
                raise KeyfobError(ErrorCode.BAD_REQUEST, f"{name} must be positive, got {value}")
        self._policy = policy
        self._timeout = timeout
        self._resolver = SafeResolver(policy, resolver)
        self._client = Http1Client(self._resolver, excerpt_bytes=EXCERPT_BYTES, tls=tls)
        self._metrics = metrics
        self._slots = _Slots(limit, limit_per_host)
        self._checked: dict[str, _Target] = {}

    async def post(
        self, url: str, *, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> Outcome:
        """One attempt. Never raises for network trouble: that comes back as a failed Outcome."""
        try:
            target = self._target(url)
            request = target.request(query, headers, body)
        except _NETWORK_ERRORS as error:
            return self._observed(classify(error=error, latency_ms=0))
        async with self._slots.hold(target.origin):
            return self._observed(await self._attempt(target.origin, request))

    async def _attempt(self, origin: Origin, request: bytes) -> Outcome:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._client.post(origin, request)
            return classify(status=answer.status, body=answer.body, latency_ms=_since(started))
        except _NETWORK_ERRORS as error:
            return classify(error=error, latency_ms=_since(started))

    def _observed(self, outcome: Outcome) -> Outcome:
        if self._metrics is not None:
            self._metrics.observe_attempt(outcome)
        return outcome

    def _target(self, url: str) -> _Target:
        found = self._checked.get(url)
        if found is None:
            try:
                parsed = URL(url)
            except ValueError as error:
                raise InvalidTarget(url, str(error)) from error
            if parsed.scheme not in _SCHEMES or not parsed.raw_host or parsed.port is None:
                raise InvalidTarget(url, "must be an absolute http or https URL")
            # The policy is fixed for the sender's life, so a URL once allowed stays allowed
            # (names are still vetted by the resolver on every new connection).
            check_host(parsed.raw_host, self._policy)
            if len(self._checked) >= _KNOWN_TARGETS:
                self._checked.clear()
            found = self._checked[url] = _Target(parsed)
        return found

    async def close(self) -> None:
        """Close the connections."""
        await self._client.close()
        await self._resolver.close()


class _Target:
    """A checked URL: where to connect, and the parts of every request to it that never vary."""

    __slots__ = ("host", "origin", "url")

    def __init__(self, url: URL) -> None:
        host, port = url.raw_host, url.port
        assert host is not None
        assert port is not None
        self.url = url
        literal = parse_ip(host) is not None
        self.origin = Origin(https=url.scheme == "https", host=host, port=port, literal=literal)
        self.host = url.host_port_subcomponent or host

    def request(self, query: list[tuple[str, str]], headers: dict[str, str], body: bytes) -> bytes:
        """The whole request: line, headers, body."""
        url = self.url.extend_query(query) if query else self.url
        lines = [f"POST {url.raw_path_qs or '/'} HTTP/1.1"]
        given = set()
        for name, value in headers.items():
            lower = name.lower()
            if lower in _OURS:
                continue
            if not HEADER_NAME.fullmatch(name) or _UNSAFE_VALUE.search(value):
                raise ValueError(f"header {name!r} cannot be sent as it is")
            given.add(lower)
            lines.append(f"{name}: {value}")
        if "host" not in given:
            lines.append(f"Host: {self.host}")
        if "user-agent" not in given:
            lines.append(f"User-Agent: {USER_AGENT}")
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "\r\n".join(lines).encode() + body


class _Slots:
    """Places for requests in flight, in all and per target; a host's entry lives while used."""

    def __init__(self, limit: int, per_host: int) -> None:
        self._all = asyncio.Semaphore(limit)
        self._per_host = per_host
        self._hosts: dict[Origin, _Host] = {}

    def hold(self, key: Origin) -> _Held:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(asyncio.Semaphore(self._per_host))
        host.users += 1
        return _Held(self, key, host, self._all)

    def _left(self, key: Origin, host: _Host) -> None:
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

    def __init__(
        self, slots: _Slots, key: Origin, host: _Host, all_places: asyncio.Semaphore
    ) -> None:
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


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
