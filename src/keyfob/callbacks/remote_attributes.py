"""A user-face remote's own attributes (``Remote.attributes``, ``Remote.callbackAttributes``).

The B2C ``Remote`` body may carry attributes for the messages of that one remote: ``attributes``
(``Header`` or ``Body``) and ``callbackAttributes``, a union keyed by channel (``webhook``,
``websocket``, ``pushnotif``, each with its channel's attribute rules) of which only the member
matching the callback's channel applies.

How they combine with the callback's own (the contract says they "add to or replace" it):

    callback.<channel>.attributes
      ◄── callbackAttributes.<channel>  same type and key (header names in any case): replaces
                                        in place; otherwise appended
      ◄── attributes                    the same rule, on the result

so a remote can change one header of its callback without restating the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keyfob.callbacks.attributes import USER, AttributeSpec, AttributeType
from keyfob.callbacks.parsing import (
    Attributes,
    Input,
    attribute_specs,
    stored_attributes,
    validate,
)
from keyfob.callbacks.user_schemas import (
    CHANNELS,
    PUSH,
    WEBHOOK,
    WEBSOCKET,
    ChannelAttributes,
    channel_attributes,
)
from keyfob.errors import ErrorCode, KeyfobError

MEMBERS = ("attributes", "callbackAttributes")


@dataclass(frozen=True, slots=True)
class RemoteAttributes:
    """A remote's own attributes, checked; both empty when the body has none."""

    attributes: tuple[AttributeSpec, ...] = ()
    webhook: tuple[AttributeSpec, ...] | None = None
    """``callbackAttributes.webhook``; ``None`` when not given."""
    websocket: tuple[AttributeSpec, ...] | None = None
    pushnotif: tuple[AttributeSpec, ...] | None = None

    def channel(self, name: str) -> tuple[AttributeSpec, ...]:
        """``callbackAttributes.<name>``, empty when not given."""
        found: tuple[AttributeSpec, ...] | None = getattr(self, name)
        return found or ()

    def stored(self) -> tuple[list[dict[str, str]] | None, dict[str, Any] | None]:
        """The ``attributes`` and ``callback_attributes`` columns (``None`` when absent)."""
        own = stored_attributes(self.attributes) if self.attributes else None
        members = {
            name: stored_attributes(found)
            for name in CHANNELS
            if (found := getattr(self, name)) is not None
        }
        return own, members or None

    def echo(self) -> dict[str, Any]:
        """The members as the ``Remote`` body shows them back."""
        own, channel = self.stored()
        shown: dict[str, Any] = {}
        if own is not None:
            shown["attributes"] = own
        if channel is not None:
            shown["callbackAttributes"] = channel
        return shown


class _MembersIn(Input):
    attributes: Attributes | None = None
    callbackAttributes: _CallbackAttributesIn | None = None


class _CallbackAttributesIn(Input):
    webhook: Attributes | None = None
    websocket: ChannelAttributes | None = None
    pushnotif: ChannelAttributes | None = None


_MembersIn.model_rebuild()


def parse_remote_attributes(data: Mapping[str, Any]) -> RemoteAttributes:
    """The two members of a B2C ``Remote`` body (the rest is left to the action parser)."""
    members = {name: data[name] for name in MEMBERS if data.get(name) is not None}
    if not members:
        return RemoteAttributes()
    found = validate(_MembersIn, members)
    own = attribute_specs(found.attributes or [], "attributes", face=USER)
    for index, spec in enumerate(own):
        if spec.type is AttributeType.QUERY:
            raise KeyfobError(
                ErrorCode.INVALID_BODY,
                f"attributes[{index}].type: a remote's own attributes are Header or Body; "
                "put Query attributes in callbackAttributes.webhook",
            )
    channel = found.callbackAttributes
    if channel is None:
        return RemoteAttributes(tuple(own))
    where = "callbackAttributes."
    webhook = None
    if channel.webhook is not None:
        webhook = tuple(attribute_specs(channel.webhook, f"{where}webhook", face=USER))
    websocket = pushnotif = None
    if channel.websocket is not None:
        websocket = tuple(channel_attributes(channel.websocket, WEBSOCKET, f"{where}websocket"))
    if channel.pushnotif is not None:
        pushnotif = tuple(channel_attributes(channel.pushnotif, PUSH, f"{where}pushnotif"))
    return RemoteAttributes(tuple(own), webhook, websocket, pushnotif)


def load_remote_attributes(
    attributes: Sequence[Mapping[str, str]] | None, callback_attributes: Mapping[str, Any] | None
) -> RemoteAttributes:
    """Rebuild from the stored columns (checked when the remote was accepted)."""
    own = tuple(_spec(item) for item in attributes or ())
    members: dict[str, tuple[AttributeSpec, ...] | None] = dict.fromkeys(CHANNELS)
    for name in CHANNELS:
        if callback_attributes is not None and callback_attributes.get(name) is not None:
            members[name] = tuple(_spec(item) for item in callback_attributes[name])
    return RemoteAttributes(own, members[WEBHOOK], members[WEBSOCKET], members[PUSH])


def _spec(item: Mapping[str, str]) -> AttributeSpec:
    return AttributeSpec(AttributeType(item["type"]), item["key"], item["value"])


def _identity(spec: AttributeSpec) -> tuple[AttributeType, str]:
    key = spec.key.lower() if spec.type is AttributeType.HEADER else spec.key
    return spec.type, key


def combine(base: Iterable[AttributeSpec], extra: Iterable[AttributeSpec]) -> list[AttributeSpec]:
    """``base`` with each of ``extra`` replacing its namesake in place, or appended."""
    combined = list(base)
    where = {_identity(spec): index for index, spec in enumerate(combined)}
    for spec in extra:
        index = where.get(_identity(spec))
        if index is None:
            where[_identity(spec)] = len(combined)
            combined.append(spec)
        else:
            combined[index] = spec
    return combined


def effective(
    callback: Iterable[AttributeSpec], remote: RemoteAttributes, channel: str = WEBHOOK
) -> list[AttributeSpec]:
    """The attributes a remote's messages are sent with on the callback's ``channel``."""
    return combine(combine(callback, remote.channel(channel)), remote.attributes)
