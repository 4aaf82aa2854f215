"""Which network addresses a webhook may reach.

A webhook target chosen by a tenant must not turn keyfob into a proxy towards its own network
(SSRF): loopback, private, link-local, shared, multicast, reserved and cloud-metadata addresses are
refused unless an operator allowlists them.
"""

from __future__ import annotations

import ipaddress

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if ``host`` is an IP literal (brackets allowed), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_metadata(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip in _METADATA


def is_private_range(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback and private (RFC 1918, ULA) ranges: what ``--allow-private-webhooks`` opens."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_private_range(ip.ipv4_mapped)
    if is_metadata(ip) or ip.is_link_local:
        return False
    return ip.is_loopback or ip.is_private


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    if is_metadata(ip):
        return False
    return bool(ip.is_global) and not ip.is_multicast
