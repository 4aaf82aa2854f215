"""Which webhook targets a callback may point at.

A target is chosen by a tenant and then called by keyfob from inside the operator's network, so
an unchecked URL turns keyfob into a proxy towards that network (SSRF). The rule, applied here
to the URL when a callback is created and by the delivery side to every resolved address:

* public addresses only, over https (the contract's server specification);
* hosts the operator lists exactly in ``allow_hosts`` skip every check, http included;
* with ``allow_private`` (``--allow-private-webhooks``, for local development) ``localhost``
  and loopback or private (RFC 1918, ULA) addresses are accepted, over http too;
* link-local and cloud-metadata addresses are refused even then, unless listed exactly;
* an IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo) is judged
  by what it carries (``kit.addresses``), here and at delivery alike.

Name resolution happens at delivery time, not here: a name may resolve differently later.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import SplitResult, urlsplit, urlunsplit

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.addresses import (
    carried_ipv4,
    is_metadata,
    is_private_range,
    is_public,
    parse_ip,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# A last label like ``1`` or ``0x7f`` makes resolvers read the name as an IPv4 address
# (``127.1``, ``2130706433``): refuse it so no address hides behind a "name".
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_HTTP_SCHEMES = ("http", "https")
_WS_SCHEMES = ("ws", "wss")
"""The plain and the secure scheme a target may use: a webhook's, a WebSocket's."""
_LOCAL_HINT = "or start keyfob with --allow-private-webhooks for local development"


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The operator's webhook settings; hosts are normalized on construction."""

    allow_hosts: frozenset[str] = frozenset()
    allow_private: bool = False

    def __post_init__(self) -> None:
        hosts = frozenset(_normalize_allowed(host) for host in self.allow_hosts)
        object.__setattr__(self, "allow_hosts", hosts)


def _normalize_allowed(host: str) -> str:
    canonical = canonical_host(host)
    if canonical is None:
        raise ValueError(f"webhook allowlist entry {host!r} is not a host name or an IP address")
    return canonical


def canonical_host(host: str) -> str | None:
    """Lowercase name or compressed IP (no brackets), or ``None`` if ``host`` is neither."""
    host = host.strip().removesuffix(".").lower()
    if host.startswith("[") != host.endswith("]"):
        return None
    ip = parse_ip(host)
    if ip is not None:
        return None if "%" in host else ip.compressed
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return None if _NUMERIC_LABEL.fullmatch(labels[-1]) else host


def host_allowed_without_checks(host: str, policy: TargetPolicy) -> bool:
    """True if the operator listed ``host`` exactly: its resolved addresses are not checked."""
    canonical = canonical_host(host)
    return canonical is not None and canonical in policy.allow_hosts


def address_allowed(ip: IPAddress | str, policy: TargetPolicy) -> bool:
    """The rule for one (resolved or literal) address."""
    address = parse_ip(ip) if isinstance(ip, str) else ip
    if address is None:
        return False
    if address.compressed in policy.allow_hosts:
        return True
    return is_public(address) or (policy.allow_private and is_private_range(address))


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _refuse(field: str, why: str) -> NoReturn:
    raise KeyfobError(ErrorCode.INVALID_WEBHOOK_TARGET, f"{field}: {why}")


def check_target(
    url: str, policy: TargetPolicy, *, field: str = "target", websocket: bool = False
) -> str:
    """Refuse an unacceptable webhook target, else return it normalized.

    Normalized means: scheme and host in lowercase, an IPv6 address compressed, a trailing dot
    or an empty port removed; path and query are kept as given. ``websocket`` judges a
    WebSocket callback's target by the same rule, with ``ws``/``wss`` for ``http``/``https``.
    """
    schemes = _WS_SCHEMES if websocket else _HTTP_SCHEMES
    parts = _split(url, field, schemes)
    scheme = parts.scheme.lower()
    port = _port(parts, field)
    host = canonical_host(parts.hostname or "")
    if host is None:
        _refuse(field, f"{parts.hostname!r} is not a valid host name or IP address")
    _check_host(host, scheme, schemes, policy, field)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def _split(url: str, field: str, schemes: tuple[str, str]) -> SplitResult:
    if not isinstance(url, str):
        _refuse(field, "must be a string")
    if len(url) > MAX_URL_LENGTH:
        _refuse(field, f"must be at most {MAX_URL_LENGTH} characters long")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        _refuse(field, "must not contain spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
    except ValueError:
        _refuse(field, "is not a valid URL (check the brackets around an IPv6 address)")
    if not parts.scheme or not parts.netloc:
        _refuse(field, "must be an absolute URL such as https://receiver.example.com/hook")
    if parts.scheme.lower() not in schemes:
        _refuse(field, f"the scheme {parts.scheme!r} is not allowed; use {schemes[1]}")
    if "@" in parts.netloc:
        _refuse(
            field,
            "must not carry credentials (user:password@); send them in a Header attribute "
            "such as Authorization",
        )
    if "#" in url:
        _refuse(field, "must not have a fragment (#...); remove it")
    if not parts.hostname:
        _refuse(field, "has no host")
    return parts


def _port(parts: SplitResult, field: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        _refuse(field, "the port must be a number from 1 to 65535")
    return port


def _check_host(
    host: str, scheme: str, schemes: tuple[str, str], policy: TargetPolicy, field: str
) -> None:
    if host in policy.allow_hosts:
        return
    ip = parse_ip(host)
    if ip is not None and not address_allowed(ip, policy):
        _refuse(field, _why_not(ip))
    local = _is_localhost(host) or (ip is not None and is_private_range(ip))
    if ip is None and _is_localhost(host) and not policy.allow_private:
        _refuse(field, f"{host} is this machine; add it to the webhook allowlist {_LOCAL_HINT}")
    plain, secure = schemes
    if scheme == plain and not (policy.allow_private and local):
        _refuse(
            field,
            f"must use {secure}; plain {plain} is accepted only for hosts in the webhook "
            f"allowlist {_LOCAL_HINT} (then for localhost and private addresses)",
        )


def _why_not(ip: IPAddress) -> str:
    for inner in carried_ipv4(ip):
        if not is_public(inner):
            return f"{ip} carries the IPv4 address {inner}, and {_why_not(inner)}"
    if is_metadata(ip):
        return f"{ip} is a cloud metadata address; it is refused unless listed in the allowlist"
    if ip.is_link_local:
        return f"{ip} is a link-local address; it is refused unless listed in the allowlist"
    if is_private_range(ip):
        return (
            f"{ip} is a loopback or private address; use a public https URL, add it to the "
            f"webhook allowlist {_LOCAL_HINT}"
        )
    return f"{ip} is not a public unicast address; use a public https URL"
