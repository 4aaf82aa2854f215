"""Which network addresses a webhook may reach.

A webhook target chosen by a tenant must not turn keyfob into a proxy towards its own network
(SSRF): loopback, private, link-local, shared, multicast, reserved and cloud-metadata addresses are
refused unless an operator allowlists them.

An IPv6 address can carry an IPv4 one, and the network then delivers to that IPv4 address (or
through it): IPv4-mapped ``::ffff:a.b.c.d`` and IPv4-compatible ``::a.b.c.d``, the NAT64 prefix
``64:ff9b::/96`` (RFC 6052), 6to4 ``2002::/16`` (RFC 3056) and Teredo ``2001::/32`` (RFC 4380,
server and client, the client's bits inverted). Such an address is judged by what it carries, so
``[64:ff9b::a9fe:a9fe]`` is the metadata address and ``[::a00:1]`` is 10.0.0.1. The local-use
NAT64 prefix ``64:ff9b:1::/48`` (RFC 8215) places the IPv4 address where each site chooses, so it
is never public; like a unique-local address it counts as private.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_LOW_32 = 0xFFFFFFFF


def parse_ip(host: str) -> IPAddress | None:
    """The address if ``host`` is an IP literal (brackets allowed), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_metadata(ip: IPAddress) -> bool:
    return ip in _METADATA


def translated_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address packets to ``ip`` are delivered to: mapped, compatible or NAT64."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    # ``::`` and ``::1`` are IPv6's own unspecified and loopback addresses, not 0.0.0.x.
    if (ip in _COMPATIBLE and int(ip) > 1) or ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & _LOW_32)
    return None


def tunnelled_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a 6to4 or Teredo address sends through (Teredo: server, client)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    return ip.teredo or ()


def carried_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """Every IPv4 address inside ``ip`` by the forms above; empty for a plain address."""
    translated = translated_ipv4(ip)
    return (translated,) if translated is not None else tunnelled_ipv4(ip)


def is_private_range(ip: IPAddress) -> bool:
    """Loopback and private (RFC 1918, ULA) ranges: what ``--allow-private-webhooks`` opens."""
    translated = translated_ipv4(ip)
    if translated is not None:
        return is_private_range(translated)
    if is_metadata(ip) or ip.is_link_local:
        return False
    tunnelled = tunnelled_ipv4(ip)
    if tunnelled:
        # Through a tunnel endpoint: private if one end is, and no end is out of bounds.
        return all(is_public(v4) or is_private_range(v4) for v4 in tunnelled) and any(
            is_private_range(v4) for v4 in tunnelled
        )
    return ip.is_loopback or ip.is_private or ip in _LOCAL_NAT64


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses, carrying only such addresses."""
    translated = translated_ipv4(ip)
    if translated is not None:
        return is_public(translated)
    if is_metadata(ip) or ip in _LOCAL_NAT64:
        return False
    if not all(is_public(v4) for v4 in tunnelled_ipv4(ip)):
        return False
    return bool(ip.is_global) and not ip.is_multicast
