"""The B2B ``RemoteEvents`` body that a remote callback's webhook receives (spec §5.2).

The worker builds one body per request (one event, or a batch) from stored event records, so the
shape lives here and nowhere else. Besides the contract's fields each event carries two opt-in
extensions: a stable ``eventId`` and the per-remote ``sequence`` number, which a receiver can use
to drop duplicates and to put events back in order.

``EventRecord`` is the one event record: the remotes domain builds it when it records an event,
and ``as_json`` is what the outbox stores. It is not checked when it is built (the writers build
it from the vocabulary's enums, one per event on the dispatcher's busiest path) but where a body
is made of it, so a corrupt record fails loudly (500) instead of reaching a partner.

Two ways in, one shape out: ``remote_event`` for a record in hand, and ``stored_remote_event``
for the delivery worker, which reads the outbox's stored records back by the thousand and gains
nothing from a round trip through datetimes. Both pass the same checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

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
_FAILURE_CAUSES = frozenset(FailureCause)
_FEEDBACK_DETAILS = frozenset(FeedbackDetail)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One remote event, as recorded and as the outbox stores it (``as_json``)."""

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

    def as_json(self) -> dict[str, Any]:
        """The stored form: these keys, the date as ``isoformat`` writes it."""
        return {
            "event_id": self.event_id,
            "remote_id": self.remote_id,
            "seq": self.seq,
            "vin": self.vin,
            "event_date": isoformat(self.event_date),
            "remote_type": self.remote_type,
            "event_type": self.event_type,
            "status": self.status,
            "failure_cause": self.failure_cause,
            "feedback_detail": self.feedback_detail,
        }


def _refuse(field: str, problem: str) -> KeyfobError:
    return KeyfobError(ErrorCode.INTERNAL, f"{field} {problem}")


def _check_event(
    *,
    seq: int,
    zoned: bool,
    remote_type: str,
    event_type: str,
    status: str,
    failure_cause: str | None,
    feedback_detail: str | None,
) -> None:
    if seq < 0:
        raise _refuse("sequence", f"must not be negative, got {seq}")
    if not zoned:
        raise _refuse("eventDate", "must carry a time zone")
    if remote_type not in _REMOTE_TYPES:
        raise _refuse("remoteType", f"is not a webhook remote type: {remote_type!r}")
    allowed = _STATUSES.get(event_type)
    if allowed is None:
        raise _refuse("eventStatus.type", f"must be Pending or Done, got {event_type!r}")
    if status not in allowed:
        raise _refuse("eventStatus.status", f"{status!r} is not a {event_type} status")
    failed = event_type == EventType.DONE and status == DoneStatus.FAILED
    if failed and failure_cause is None:
        raise _refuse("eventStatus.failureCause", "is required when the status is Failed")
    if not failed and failure_cause is not None:
        raise _refuse("eventStatus.failureCause", "is only allowed when the status is Done/Failed")
    if failure_cause is not None and failure_cause not in _FAILURE_CAUSES:
        raise _refuse("eventStatus.failureCause", f"is not a failure cause: {failure_cause!r}")
    if feedback_detail is not None and feedback_detail not in _FEEDBACK_DETAILS:
        raise _refuse(
            "eventStatus.feedbackDetail", f"is not a feedback detail: {feedback_detail!r}"
        )


def _status(
    event_type: str, status: str, failure_cause: str | None, feedback_detail: str | None
) -> dict[str, str]:
    found = {"type": str(event_type), "status": str(status)}
    if failure_cause is not None:
        found["failureCause"] = str(failure_cause)
    if feedback_detail is not None:
        found["feedbackDetail"] = str(feedback_detail)
    return found


def event_status(event: EventRecord) -> dict[str, str]:
    """The ``eventStatus`` object: ``failureCause`` and ``feedbackDetail`` only when set."""
    return _status(event.event_type, event.status, event.failure_cause, event.feedback_detail)


def remote_event(event: EventRecord) -> dict[str, Any]:
    """One item of ``events[]``, keyfob's extensions included; a corrupt record is refused."""
    _check_event(
        seq=event.seq,
        zoned=event.event_date.tzinfo is not None,
        remote_type=event.remote_type,
        event_type=event.event_type,
        status=event.status,
        failure_cause=event.failure_cause,
        feedback_detail=event.feedback_detail,
    )
    return {
        "remoteActionId": event.remote_id,
        "vin": event.vin,
        "eventDate": isoformat(event.event_date),
        "remoteType": str(event.remote_type),
        "eventStatus": event_status(event),
        "eventId": event.event_id,
        "sequence": event.seq,
    }


def _canonical_date(text: str) -> str:
    """``text`` as ``isoformat`` writes it (UTC, milliseconds, ``Z``): as is when it already is."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise _refuse("eventDate", f"is not an ISO 8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        raise _refuse("eventDate", "must carry a time zone")
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z":
        return text
    return isoformat(moment)


def stored_remote_event(stored: Mapping[str, Any]) -> dict[str, Any]:
    """One item of ``events[]`` from a stored record (the keys ``EventRecord.as_json`` writes)."""
    event_type, status = stored["event_type"], stored["status"]
    cause, detail = stored.get("failure_cause"), stored.get("feedback_detail")
    _check_event(
        seq=stored["seq"],
        zoned=True,
        remote_type=stored["remote_type"],
        event_type=event_type,
        status=status,
        failure_cause=cause,
        feedback_detail=detail,
    )
    return {
        "remoteActionId": stored["remote_id"],
        "vin": stored["vin"],
        "eventDate": _canonical_date(stored["event_date"]),
        "remoteType": str(stored["remote_type"]),
        "eventStatus": _status(event_type, status, cause, detail),
        "eventId": stored["event_id"],
        "sequence": stored["seq"],
    }


def build_remote_events(
    callback_id: str,
    body_attributes: list[dict[str, str]],
    events: Sequence[EventRecord],
) -> dict[str, Any]:
    """The whole body of one webhook request; ``events`` keeps the order it is given."""
    return remote_events_body(callback_id, body_attributes, [remote_event(e) for e in events])


def remote_events_body(
    callback_id: str, body_attributes: list[dict[str, str]], items: list[dict[str, Any]]
) -> dict[str, Any]:
    """The whole body around ``events[]`` items already built (``remote_event`` and kin)."""
    if not items:
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
        "events": items,
    }


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(body: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed and posted.

    orjson writes it several times faster than the standard library, which the delivery
    worker felt (one body per POST); a value orjson refuses (an integer past 64 bits in a
    partner's attributes) is written by the standard library instead, in the same form.
    """
    try:
        return orjson.dumps(body)
    except TypeError:
        return _ENCODER.encode(body).encode("utf-8")
