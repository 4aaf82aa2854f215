"""Webhook attributes and their ``$variable`` templating (decision 8).

An attribute is fixed when the callback is created, yet what is sent depends on each event (the
vehicle, the remote type), so values are small templates rendered at delivery time. They are
checked at creation, so a typo is a 400 rather than a header silently sent as ``$vni``.

Grammar (the one of Python's ``string.Template``):

* ``$name`` is a variable; the name is the longest run of ASCII letters, digits and ``_``
  that starts with a letter or ``_`` (so ``$vin-A`` is ``$vin`` then ``-A``);
* ``${name}`` is the same variable, for when letters or digits follow it (``${vin}A``);
* ``$$`` is one literal ``$``;
* any other ``$`` is refused (UNKNOWN_VARIABLE), as is an unknown name.

Names match case-insensitively (``$VIN`` is ``$vin``). The B2B variables are ``vin``,
``callbackID``, ``remoteType`` and ``fleetID``; ``vin`` and ``remoteType`` differ between events
of one callback, ``callbackID`` and ``fleetID`` do not, which is what decides whether events
may share one request. In a batch, every attribute is rendered from the batch's first event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from keyfob.errors import ErrorCode, KeyfobError


class AttributeType(StrEnum):
    """Where an attribute goes on the webhook request."""

    HEADER = "Header"
    BODY = "Body"
    QUERY = "Query"


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One configured attribute; ``value`` is a template in the grammar above."""

    type: AttributeType
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RenderedAttributes:
    """Attributes rendered for one request, each in its place, in configured order."""

    headers: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    body: list[dict[str, str]] = field(default_factory=list)


VARIABLES: tuple[str, ...] = ("vin", "callbackID", "remoteType", "fleetID")
PER_EVENT_VARIABLES = frozenset({"vin", "remoteType"})
_CANONICAL = {name.lower(): name for name in VARIABLES}
_LISTED = ", ".join(f"${name}" for name in VARIABLES)

_TOKEN = re.compile(
    r"\$(?:(?P<dollar>\$)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|(?P<bad>))"
)

# RFC 7230 ``token``: what a header field name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Hop-by-hop headers, and the ones the sender sets itself (framing, signature).
RESERVED_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
    }
)
# A header value may hold visible ASCII, spaces and tabs; nothing that could end the line.
_HEADER_VALUE_BAD = re.compile(r"[^\t\x20-\x7e]")


class _TemplateError(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _scan(value: str) -> Iterator[tuple[bool, str]]:
    """``(is_variable, text)`` pieces; variable pieces carry the canonical name."""
    position = 0
    for match in _TOKEN.finditer(value):
        if match.start() > position:
            yield False, value[position : match.start()]
        position = match.end()
        if match.group("dollar") is not None:
            yield False, "$"
            continue
        name = match.group("name") or match.group("braced")
        if name is None:
            raise _TemplateError(
                f"the '$' at character {match.start() + 1} does not start a variable name; "
                f"the variables are {_LISTED}; write $$ for a literal $"
            )
        canonical = _CANONICAL.get(name.lower())
        if canonical is None:
            raise _TemplateError(
                f"unknown variable ${name}; the variables are {_LISTED} "
                "(any case); write $$ for a literal $"
            )
        yield True, canonical
    if position < len(value):
        yield False, value[position:]


def _pieces(value: str, path: str) -> list[tuple[bool, str]]:
    try:
        return list(_scan(value))
    except _TemplateError as exc:
        raise KeyfobError(ErrorCode.UNKNOWN_VARIABLE, f"{path}: {exc.message}") from None


def validate_value(value: str, path: str) -> None:
    """Refuse a value that names an unknown variable or holds a stray ``$``."""
    _pieces(value, path)


def variables_in(value: str) -> frozenset[str]:
    """The canonical names of the variables ``value`` refers to."""
    return frozenset(text for is_variable, text in _pieces(value, "value") if is_variable)


def varies_per_event(value: str) -> bool:
    """True if two events of one callback can render ``value`` differently."""
    return not variables_in(value).isdisjoint(PER_EVENT_VARIABLES)


def render(value: str, variables: Mapping[str, str]) -> str:
    """Substitute the variables; ``variables`` is keyed by canonical name (``callbackID``).

    A variable the template uses but ``variables`` lacks is a ``KeyError``: the caller must
    supply all four.
    """
    return "".join(
        variables[text] if is_variable else text for is_variable, text in _pieces(value, "value")
    )


def check_attribute(attribute: AttributeSpec, path: str) -> None:
    """Everything a configured attribute must satisfy; ``path`` names it in the message."""
    if attribute.type is AttributeType.HEADER:
        _check_header(attribute, path)
    validate_value(attribute.value, f"{path}.value")


def _check_header(attribute: AttributeSpec, path: str) -> None:
    if not _HEADER_NAME.fullmatch(attribute.key):
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"{path}.key: {attribute.key!r} is not a valid HTTP header name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces or colons)",
        )
    if attribute.key.lower() in RESERVED_HEADERS:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"{path}.key: the header {attribute.key} is set by keyfob itself or is hop-by-hop "
            "and cannot be configured",
        )
    if _HEADER_VALUE_BAD.search(attribute.value):
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"{path}.value: a header value must be printable ASCII with no line breaks "
            "(CR, LF) or other control characters",
        )


def batching_allowed(attributes: Iterable[AttributeSpec]) -> bool:
    """False when a Header or Query attribute varies per event (spec 3.3).

    Headers and the URL are sent once per request, so events that would render them
    differently cannot share one request.
    """
    return not any(
        attribute.type is not AttributeType.BODY and varies_per_event(attribute.value)
        for attribute in attributes
    )


def render_request_parts(
    attributes: Iterable[AttributeSpec], variables: Mapping[str, str]
) -> RenderedAttributes:
    """Render every attribute for one request.

    Variable values come from stored data (fleet ids are free strings), so characters that
    cannot appear in a header value are dropped from rendered headers rather than let through.
    """
    rendered = RenderedAttributes()
    for attribute in attributes:
        value = render(attribute.value, variables)
        if attribute.type is AttributeType.HEADER:
            rendered.headers[attribute.key] = _HEADER_VALUE_BAD.sub("", value)
        elif attribute.type is AttributeType.QUERY:
            rendered.query.append((attribute.key, value))
        else:
            rendered.body.append({"key": attribute.key, "value": value})
    return rendered
