"""The user face's webhook body: ``Message`` (B2C template v4.16.0, spec §5.3).

A ``Message`` holds exactly the template's fields and nothing more (decision 26): the real
consumers of the user face parse it strictly and drop a message with a key they do not know.
So where the fleet face's ``RemoteEvents`` carries keyfob's extensions in the body (``eventId``,
``sequence``), the user face sends them as headers: the signature headers every webhook gets,
and ``keyfob-sequence``, the per-remote sequence number of each message, comma-separated in
array order for a batch.

    {"callbackId", "attributes": [{key, value}], "type": "Remote", "date",
     "remoteEvent": {"remoteActionId", "remoteType", "eventStatus"}}

``date`` is when the event was raised, not when a request was made: a message keeps its date
(and its signature id) on every retry, so a receiver can tell one message sent twice from two.
One due message is sent as that object; several as a JSON array of them (decision 13), which
the worker does only under backlog (``notifications.queue``).

The records are the outbox's stored ones; they pass the same checks as on the fleet face
(``payload.stored_remote_event``), plus the user face's narrower remote types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications.payload import stored_remote_event

USER_REMOTE_TYPES = frozenset(
    {
        "ThermalPreconditioning",
        "ElectricBatteryChargingRequest",
        "Horn",
        "Doors",
        "Lights",
        "ChargingState",
        "WakeUp",
        "Navigation",
    }
)
"""The template's ``RemoteType``: no immobilization or stolen on the user face (decision 18)."""

SEQUENCE_HEADER = "keyfob-sequence"


def remote_context(
    label: str | None,
    attributes: Sequence[Mapping[str, str]] | None,
    callback_attributes: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """What a user-face message needs of its remote beyond the event, as the outbox stores it
    (``notifications.context``); ``None`` when the remote has neither label nor attributes."""
    context: dict[str, Any] = {}
    if label is not None:
        context["label"] = label
    if attributes:
        context["attributes"] = list(attributes)
    if callback_attributes:
        context["callbackAttributes"] = dict(callback_attributes)
    return context or None


def message(
    callback_id: str, body_attributes: Sequence[Mapping[str, str]], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """One ``Message`` for one stored event record, with its rendered Body attributes."""
    item = stored_remote_event(stored)
    if item["remoteType"] not in USER_REMOTE_TYPES:
        raise KeyfobError(
            ErrorCode.INTERNAL, f"remoteType {item['remoteType']!r} has no user-face message"
        )
    attributes = []
    for index, attribute in enumerate(body_attributes):
        if set(attribute) != {"key", "value"}:
            raise KeyfobError(
                ErrorCode.INTERNAL, f"attributes[{index}] must have exactly the keys key and value"
            )
        attributes.append({"key": attribute["key"], "value": attribute["value"]})
    return {
        "callbackId": callback_id,
        "attributes": attributes,
        "type": "Remote",
        "date": item["eventDate"],
        "remoteEvent": {
            "remoteActionId": item["remoteActionId"],
            "remoteType": item["remoteType"],
            "eventStatus": item["eventStatus"],
        },
    }


def messages_body(messages: Sequence[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """What one request carries: the message itself, or an array when there are several."""
    if not messages:
        raise KeyfobError(ErrorCode.INTERNAL, "a request must carry at least one message")
    return messages[0] if len(messages) == 1 else list(messages)


def sequence_header(stored: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``keyfob-sequence``: each message's per-remote sequence number, in the body's order."""
    return {SEQUENCE_HEADER: ",".join(str(int(record["seq"])) for record in stored)}
