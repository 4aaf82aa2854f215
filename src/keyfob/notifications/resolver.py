"""Name resolution that refuses forbidden addresses, so a webhook cannot reach inside (SSRF).

A tenant picks the webhook URL; without this, a name that resolves to 127.0.0.1, a private range
or the cloud metadata address would let keyfob be used as a proxy into the operator's network.
The check sits in the resolver because the webhook client (``http1``) connects to exactly the
addresses its resolver returned: the name is looked up once and the checked answer is what gets
dialled, which closes the gap a second, later lookup would leave (DNS rebinding). IP-literal
hosts never reach a resolver, so the sender checks those with ``check_host`` before posting. The
resolver keeps aiohttp's interface; the WebSocket channel resolves through it the same way.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from keyfob.callbacks.targets import TargetPolicy, address_allowed, host_allowed_without_checks
from keyfob.kit.addresses import parse_ip
from keyfob.notifications.outcome import RefusedAddress


def check_address(host: str, address: str, policy: TargetPolicy) -> None:
    """Raise ``RefusedAddress`` unless ``address`` (what ``host`` resolved to) may be reached."""
    ip = ip_address(address.split("%", 1)[0])
    if not address_allowed(ip, policy):
        raise RefusedAddress(host, str(ip))


def check_host(host: str, policy: TargetPolicy) -> None:
    """The check for a URL's host when it is an IP literal; names go through the resolver."""
    if host_allowed_without_checks(host, policy):
        return
    ip = parse_ip(host)
    if ip is not None and not address_allowed(ip, policy):
        raise RefusedAddress(host, str(ip))


class SafeResolver(AbstractResolver):
    """Resolves with ``inner`` (the system resolver by default), then vets every address."""

    def __init__(self, policy: TargetPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        if not host_allowed_without_checks(host, self._policy):
            for result in results:
                check_address(host, result["host"], self._policy)
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
