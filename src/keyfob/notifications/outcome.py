"""What one webhook attempt came to, decided in one pure place (decision 3).

The sender catches whatever the network threw and hands it here with the status and the start of
the answer; the worker, the delivery log and the metrics then only ever see an ``Outcome``. Any 2XX
is delivered; every other status, a time-out, a refused or unreachable address and a TLS failure
is a failed attempt that enters the retry policy.

    error_class
      None               2XX
      http_<code>        any other status, 3XX included (redirects are never followed)
      refused_address    the target resolves to an address the operator does not allow (SSRF)
      invalid_url        the target cannot be parsed or is not http(s)
      tls                handshake or certificate failure
      timeout            no complete answer within the time-out
      dns                the host name does not resolve
      connect            refused, reset or closed connection
      protocol           the answer is not valid HTTP
      invalid_request    the request itself cannot be sent (e.g. a header value with a newline)
      error              anything else the client library raised
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from dataclasses import dataclass

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications.http1 import BadAnswer, NameNotResolved

EXCERPT_BYTES = 2048
"""How much of the receiver's answer is kept with each attempt."""

_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error_class: str | None
    latency_ms: int
    response_excerpt: str | None
    detail: str | None = None
    """A short human description of a network failure (``None`` when an answer came back)."""


class RefusedAddress(Exception):
    """The target's host is, or resolves to, an address the delivery policy forbids."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        where = address if host == address else f"{host} ({address})"
        super().__init__(f"webhook target {where} is not an allowed address")


class InvalidTarget(ValueError):
    """The target URL cannot be parsed or is not an absolute http(s) URL."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"{url}: {why}")


def excerpt(body: bytes) -> str:
    """The first 2 KiB of an answer as text, undecodable bytes replaced rather than refused."""
    return body[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def classify(
    *,
    latency_ms: int,
    status: int | None = None,
    body: bytes = b"",
    error: BaseException | None = None,
) -> Outcome:
    """An attempt that got either an HTTP ``status`` (and ``body``) or an ``error``."""
    if (status is None) == (error is None):
        raise KeyfobError(ErrorCode.INTERNAL, "classify takes exactly one of status or error")
    if error is not None:
        return _from_error(error, latency_ms=latency_ms)
    assert status is not None
    return _from_response(status, body, latency_ms=latency_ms)


def _from_response(status: int, body: bytes, *, latency_ms: int) -> Outcome:
    delivered = 200 <= status < 300
    return Outcome(
        delivered=delivered,
        status_code=status,
        error_class=None if delivered else f"http_{status}",
        latency_ms=latency_ms,
        response_excerpt=excerpt(body),
    )


def _from_error(error: BaseException, *, latency_ms: int) -> Outcome:
    return Outcome(
        delivered=False,
        status_code=None,
        error_class=error_class(error),
        latency_ms=latency_ms,
        response_excerpt=None,
        detail=_describe(error),
    )


def _aiohttp(*names: str) -> tuple[type[BaseException], ...]:
    """aiohttp's error classes of these names, once the WebSocket or push channel has loaded
    aiohttp; until then none of them can have been raised (webhooks go through ``http1``)."""
    module = sys.modules.get("aiohttp")
    return () if module is None else tuple(getattr(module, name) for name in names)


def error_class(error: BaseException) -> str:
    """The class of a network failure; the cause chain is searched for an SSRF refusal first."""
    if any(isinstance(e, RefusedAddress) for e in _chain(error)):
        return "refused_address"
    if isinstance(error, (InvalidTarget, *_aiohttp("InvalidURL"))):
        return "invalid_url"
    tls = _aiohttp("ServerFingerprintMismatch", "ClientSSLError")
    if isinstance(error, (ssl.SSLError, ssl.CertificateError, *tls)):
        return "tls"
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, (NameNotResolved, *_aiohttp("ClientConnectorDNSError"))):
        return "dns"
    if isinstance(error, (ConnectionError, OSError, *_aiohttp("ClientConnectionError"))):
        return "connect"
    if isinstance(error, (BadAnswer, *_aiohttp("ClientResponseError", "ClientPayloadError"))):
        return "protocol"
    if isinstance(error, ValueError):
        return "invalid_request"
    return "error"


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:_DETAIL_CHARS]
