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

Names match case-insensitively (``$VIN`` is ``$vin``). Each face has its own set
(``Variables``). The fleet face's (``FLEET``) is ``vin``, ``callbackID``, ``remoteType`` and
``fleetID``; ``vin`` and ``remoteType`` differ between events of one callback, ``callbackID`` and
``fleetID`` do not, which is what decides whether events may share one request. In a batch,
every attribute is rendered from the batch's first event. The user face's (``USER``) is
``Vin``, ``CallbackID``, ``CallbackLabel``, ``RemoteType``, ``RemoteStatus`` and ``RemoteLabel``
(decision 8), on the callback's attributes and on a remote's own alike.
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


_TOKEN = re.compile(
    r"\$(?:(?P<dollar>\$)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|(?P<bad>))"
)

# RFC 7230 ``token``: what a header field name may be made of.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
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


@dataclass(frozen=True, slots=True)
class Variables:
    """The ``$names`` a face offers, which of them differ between events of one callback, and
    the headers its sender sets itself (so a configured attribute may not)."""

    names: tuple[str, ...]
    per_event: frozenset[str]
    reserved_headers: frozenset[str] = RESERVED_HEADERS
    canonical: dict[str, str] = field(init=False)
    listed: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical", {name.lower(): name for name in self.names})
        object.__setattr__(self, "listed", ", ".join(f"${name}" for name in self.names))


FLEET = Variables(("vin", "callbackID", "remoteType", "fleetID"), frozenset({"vin", "remoteType"}))
"""The fleet face's variables (``RemoteAttribute`` of the B2B contract)."""

USER = Variables(
    ("Vin", "CallbackID", "CallbackLabel", "RemoteType", "RemoteStatus", "RemoteLabel"),
    frozenset({"Vin", "RemoteType", "RemoteStatus", "RemoteLabel"}),
    RESERVED_HEADERS | {"keyfob-sequence"},
)
"""The user face's variables: the callback's and the remote's of the B2C contract together."""

VARIABLES = FLEET.names
PER_EVENT_VARIABLES = FLEET.per_event


class _TemplateError(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _scan(value: str, variables: Variables) -> Iterator[tuple[bool, str]]:
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
                f"the variables are {variables.listed}; write $$ for a literal $"
            )
        canonical = variables.canonical.get(name.lower())
        if canonical is None:
            raise _TemplateError(
                f"unknown variable ${name}; the variables are {variables.listed} "
                "(any case); write $$ for a literal $"
            )
        yield True, canonical
    if position < len(value):
        yield False, value[position:]


def _pieces(value: str, path: str, variables: Variables) -> list[tuple[bool, str]]:
    try:
        return list(_scan(value, variables))
    except _TemplateError as exc:
        raise KeyfobError(ErrorCode.UNKNOWN_VARIABLE, f"{path}: {exc.message}") from None


def validate_value(value: str, path: str, *, face: Variables = FLEET) -> None:
    """Refuse a value that names an unknown variable or holds a stray ``$``."""
    _pieces(value, path, face)


def variables_in(value: str, *, face: Variables = FLEET) -> frozenset[str]:
    """The canonical names of the variables ``value`` refers to."""
    return frozenset(text for is_variable, text in _pieces(value, "value", face) if is_variable)


def varies_per_event(value: str, *, face: Variables = FLEET) -> bool:
    """True if two events of one callback can render ``value`` differently."""
    return not variables_in(value, face=face).isdisjoint(face.per_event)


def render(value: str, variables: Mapping[str, str], *, face: Variables = FLEET) -> str:
    """Substitute the variables; ``variables`` is keyed by canonical name (``callbackID``).

    A variable the template uses but ``variables`` lacks is a ``KeyError``: the caller must
    supply every variable of ``face``.
    """
    return "".join(
        variables[text] if is_variable else text
        for is_variable, text in _pieces(value, "value", face)
    )


def check_attribute(attribute: AttributeSpec, path: str, *, face: Variables = FLEET) -> None:
    """Everything a configured attribute must satisfy; ``path`` names it in the message."""
    if attribute.type is AttributeType.HEADER:
        _check_header(attribute, path, face)
    validate_value(attribute.value, f"{path}.value", face=face)


def _check_header(attribute: AttributeSpec, path: str, face: Variables) -> None:
    if not HEADER_NAME.fullmatch(attribute.key):
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"{path}.key: {attribute.key!r} is not a valid HTTP header name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces or colons)",
        )
    if attribute.key.lower() in face.reserved_headers:
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
    attributes: Iterable[AttributeSpec], variables: Mapping[str, str], *, face: Variables = FLEET
) -> RenderedAttributes:
    """Render every attribute for one request.

    Variable values come from stored data (fleet ids are free strings), so characters that
    cannot appear in a header value are dropped from rendered headers rather than let through.
    """
    rendered = RenderedAttributes()
    for attribute in attributes:
        value = render(attribute.value, variables, face=face)
        if attribute.type is AttributeType.HEADER:
            rendered.headers[attribute.key] = _HEADER_VALUE_BAD.sub("", value)
        elif attribute.type is AttributeType.QUERY:
            rendered.query.append((attribute.key, value))
        else:
            rendered.body.append({"key": attribute.key, "value": value})
    return rendered
