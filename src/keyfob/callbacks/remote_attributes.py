"""A user-face remote's own attributes (``Remote.attributes``, ``Remote.callbackAttributes``).

The B2C ``Remote`` body may carry attributes for the messages of that one remote: ``attributes``
(``Header`` or ``Body``) and ``callbackAttributes``, a union keyed by channel of which only the
member matching the callback's channel applies. keyfob delivers user callbacks by webhook only
today, so ``callbackAttributes.webhook`` is the one member accepted; the others are a 400.

How they combine with the callback's own (the contract says they "add to or replace" it):

    callback.webhook.attributes
      ◄── callbackAttributes.webhook   same type and key (header names in any case): replaces
                                       in place; otherwise appended
      ◄── attributes                   the same rule, on the result

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
from keyfob.errors import ErrorCode, KeyfobError

MEMBERS = ("attributes", "callbackAttributes")
OTHER_CHANNELS = ("websocket", "pushnotif")


@dataclass(frozen=True, slots=True)
class RemoteAttributes:
    """A remote's own attributes, checked; both empty when the body has none."""

    attributes: tuple[AttributeSpec, ...] = ()
    webhook: tuple[AttributeSpec, ...] | None = None
    """``callbackAttributes.webhook``; ``None`` when not given."""

    def stored(self) -> tuple[list[dict[str, str]] | None, dict[str, Any] | None]:
        """The ``attributes`` and ``callback_attributes`` columns (``None`` when absent)."""
        own = stored_attributes(self.attributes) if self.attributes else None
        channel = None if self.webhook is None else {"webhook": stored_attributes(self.webhook)}
        return own, channel

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
    websocket: Any = None
    pushnotif: Any = None


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
    webhook = None
    if channel is not None:
        for name in OTHER_CHANNELS:
            if getattr(channel, name) is not None:
                raise KeyfobError(
                    ErrorCode.INVALID_BODY,
                    f"callbackAttributes.{name}: user callbacks deliver by webhook; "
                    "only callbackAttributes.webhook applies",
                )
        webhook = tuple(
            attribute_specs(channel.webhook or [], "callbackAttributes.webhook", face=USER)
        )
    return RemoteAttributes(tuple(own), webhook)


def load_remote_attributes(
    attributes: Sequence[Mapping[str, str]] | None, callback_attributes: Mapping[str, Any] | None
) -> RemoteAttributes:
    """Rebuild from the stored columns (checked when the remote was accepted)."""
    own = tuple(_spec(item) for item in attributes or ())
    webhook = None
    if callback_attributes is not None:
        webhook = tuple(_spec(item) for item in callback_attributes.get("webhook") or ())
    return RemoteAttributes(own, webhook)


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


def effective(callback: Iterable[AttributeSpec], remote: RemoteAttributes) -> list[AttributeSpec]:
    """The attributes a remote's messages are sent with (see the module docstring)."""
    return combine(combine(callback, remote.webhook or ()), remote.attributes)
