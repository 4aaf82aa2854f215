"""The B2B ``RemoteEvents`` body that a remote callback's webhook receives (spec §5.2).

The worker builds one body per request (one event, or a batch) from stored event records, so the
shape lives here and nowhere else. Besides the contract's fields each event carries two opt-in
extensions: a stable ``eventId`` and the per-remote ``sequence`` number, which a receiver can use
to drop duplicates and to put events back in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import isoformat
from keyfob.vocabulary import (
    DoneStatus,
    EventType,
    FailureCause,
    FeedbackDetail,
    PendingStatus,
    RemoteType,
)

WEBHOOK_ONLY_TYPES = frozenset({"VehicleState", "ChargingState"})
"""Remote types the webhook enum has on top of the API's."""

_REMOTE_TYPES = frozenset(RemoteType) | WEBHOOK_ONLY_TYPES
_STATUSES: dict[str, frozenset[str]] = {
    EventType.PENDING: frozenset(PendingStatus),
    EventType.DONE: frozenset(DoneStatus),
}


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One remote event as stored; checked on construction so a corrupt row fails loudly (500)."""

    event_id: str
    remote_id: str
    seq: int
    vin: str
    event_date: datetime
    remote_type: str
    event_type: str
    status: str
    failure_cause: str | None = None
    feedback_detail: str | None = None

    def __post_init__(self) -> None:
        _check_event(self)


def _refuse(field: str, problem: str) -> KeyfobError:
    return KeyfobError(ErrorCode.INTERNAL, f"{field} {problem}")


def _check_event(event: EventRecord) -> None:
    if event.seq < 0:
        raise _refuse("sequence", f"must not be negative, got {event.seq}")
    if event.event_date.tzinfo is None:
        raise _refuse("eventDate", "must carry a time zone")
    if event.remote_type not in _REMOTE_TYPES:
        raise _refuse("remoteType", f"is not a webhook remote type: {event.remote_type!r}")
    allowed = _STATUSES.get(event.event_type)
    if allowed is None:
        raise _refuse("eventStatus.type", f"must be Pending or Done, got {event.event_type!r}")
    if event.status not in allowed:
        raise _refuse("eventStatus.status", f"{event.status!r} is not a {event.event_type} status")
    failed = event.event_type == EventType.DONE and event.status == DoneStatus.FAILED
    if failed and event.failure_cause is None:
        raise _refuse("eventStatus.failureCause", "is required when the status is Failed")
    if not failed and event.failure_cause is not None:
        raise _refuse("eventStatus.failureCause", "is only allowed when the status is Done/Failed")
    if event.failure_cause is not None and event.failure_cause not in frozenset(FailureCause):
        raise _refuse(
            "eventStatus.failureCause", f"is not a failure cause: {event.failure_cause!r}"
        )
    detail = event.feedback_detail
    if detail is not None and detail not in frozenset(FeedbackDetail):
        raise _refuse("eventStatus.feedbackDetail", f"is not a feedback detail: {detail!r}")


def event_status(event: EventRecord) -> dict[str, str]:
    """The ``eventStatus`` object: ``failureCause`` and ``feedbackDetail`` only when set."""
    status = {"type": str(event.event_type), "status": str(event.status)}
    if event.failure_cause is not None:
        status["failureCause"] = str(event.failure_cause)
    if event.feedback_detail is not None:
        status["feedbackDetail"] = str(event.feedback_detail)
    return status


def remote_event(event: EventRecord) -> dict[str, Any]:
    """One item of ``events[]``, keyfob's extensions included."""
    return {
        "remoteActionId": event.remote_id,
        "vin": event.vin,
        "eventDate": isoformat(event.event_date),
        "remoteType": str(event.remote_type),
        "eventStatus": event_status(event),
        "eventId": event.event_id,
        "sequence": event.seq,
    }


def build_remote_events(
    callback_id: str,
    body_attributes: list[dict[str, str]],
    events: Sequence[EventRecord],
) -> dict[str, Any]:
    """The whole body of one webhook request; ``events`` keeps the order it is given."""
    if not events:
        raise KeyfobError(ErrorCode.INTERNAL, "events must hold at least one event")
    for index, attribute in enumerate(body_attributes):
        if set(attribute) != {"key", "value"}:
            raise KeyfobError(
                ErrorCode.INTERNAL,
                f"attributes[{index}] must have exactly the keys key and value",
            )
    return {
        "callbackId": callback_id,
        "attributes": [{"key": a["key"], "value": a["value"]} for a in body_attributes],
        "events": [remote_event(event) for event in events],
    }


def encode(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed and posted."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
