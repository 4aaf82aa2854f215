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

import asyncio
import socket
from collections.abc import Mapping, Sequence
from ipaddress import ip_address
from typing import Any, Protocol

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


Address = Mapping[str, Any]
"""One answer: ``host`` (the address as text), ``port``, ``family``, as aiohttp's resolvers."""


class Resolver(Protocol):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> Sequence[Address]: ...

    async def close(self) -> None: ...


_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


class SystemResolver:
    """The operating system's resolver, off the event loop (``getaddrinfo`` in its executor)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Address]:
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )
        answers: list[Address] = []
        for kind, _type, proto, _name, address in found:
            if kind == socket.AF_INET6 and len(address) < 3:
                continue  # an interpreter built without IPv6
            text, number = str(address[0]), int(address[1])
            if kind == socket.AF_INET6 and len(address) == 4 and address[3]:
                # A link-local address: its zone (``fe80::1%eth0``) must survive as text.
                text, service = await loop.getnameinfo((text, number, *address[2:]), _NUMERIC)
                number = int(service)
            answers.append(
                {"hostname": host, "host": text, "port": number, "family": kind, "proto": proto}
            )
        return answers

    async def close(self) -> None:
        return None


class SafeResolver:
    """Resolves with ``inner`` (the system resolver by default), then vets every address."""

    def __init__(self, policy: TargetPolicy, inner: Resolver | None = None) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> Sequence[Address]:
        if self._inner is None:
            self._inner = SystemResolver()
        results = await self._inner.resolve(host, port, family)
        if not host_allowed_without_checks(host, self._policy):
            for result in results:
                check_address(host, result["host"], self._policy)
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
