"""The B2B RemoteEvents body: the contract's shape plus keyfob's two extension fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from keyfob.errors import KeyfobError
from keyfob.notifications.payload import (
    EventRecord,
    build_remote_events,
    encode,
    remote_event,
    stored_remote_event,
)
from oracle_schemas import assert_conforms, errors

RID = "0f9a6c2e5b7d4e1f8a3b2c1d0e9f8a7b"
CBID = "c0ffee00c0ffee00c0ffee00c0ffee00"
VIN = "VF3ABCDE0FG123456"
AT = datetime(2026, 3, 1, 8, 0, 1, 250_000, tzinfo=UTC)


def event(seq: int = 1, **changes: Any) -> EventRecord:
    fields: dict[str, Any] = {
        "event_id": f"e{seq:031x}",
        "remote_id": RID,
        "seq": seq,
        "vin": VIN,
        "event_date": AT + timedelta(seconds=seq),
        "remote_type": "Doors",
        "event_type": "Pending",
        "status": "Accepted",
    }
    fields.update(changes)
    return EventRecord(**fields)


def conforming(body: dict[str, Any]) -> dict[str, Any]:
    assert_conforms("b2b-webhook", "RemoteEvents", body)
    return body


def test_a_single_pending_event() -> None:
    body = conforming(build_remote_events(CBID, [], [event()]))
    assert body == {
        "callbackId": CBID,
        "attributes": [],
        "events": [
            {
                "remoteActionId": RID,
                "vin": VIN,
                "eventDate": "2026-03-01T08:00:02.250Z",
                "remoteType": "Doors",
                "eventStatus": {"type": "Pending", "status": "Accepted"},
                "eventId": "e0000000000000000000000000000001",
                "sequence": 1,
            }
        ],
    }


def test_a_batch_keeps_the_given_order_and_the_body_attributes() -> None:
    events = [
        event(1),
        event(2, status="WakingUpVehicle"),
        event(3, status="SentToVehicle"),
        event(4, event_type="Done", status="Success", feedback_detail="NoCIDBlacklisted"),
    ]
    attributes = [{"key": "tenant", "value": "acme"}, {"key": "vin", "value": VIN}]
    body = conforming(build_remote_events(CBID, attributes, events))
    assert body["attributes"] == attributes
    assert [e["sequence"] for e in body["events"]] == [1, 2, 3, 4]
    assert [e["eventStatus"]["status"] for e in body["events"]] == [
        "Accepted",
        "WakingUpVehicle",
        "SentToVehicle",
        "Success",
    ]
    assert body["events"][3]["eventStatus"] == {
        "type": "Done",
        "status": "Success",
        "feedbackDetail": "NoCIDBlacklisted",
    }


@pytest.mark.parametrize("cause", ["DoorsOpen", "VehicleConnectionTimeout", "CanceledByDriver"])
def test_a_failure_carries_its_cause(cause: str) -> None:
    failed = event(2, event_type="Done", status="Failed", failure_cause=cause)
    body = conforming(build_remote_events(CBID, [], [failed]))
    assert body["events"][0]["eventStatus"] == {
        "type": "Done",
        "status": "Failed",
        "failureCause": cause,
    }


def test_a_failure_with_feedback_detail() -> None:
    failed = event(
        2,
        event_type="Done",
        status="Failed",
        failure_cause="CidInside",
        feedback_detail="CIDBlacklisted",
    )
    body = conforming(build_remote_events(CBID, [], [failed]))
    assert body["events"][0]["eventStatus"]["feedbackDetail"] == "CIDBlacklisted"


@pytest.mark.parametrize("remote_type", ["VehicleState", "ChargingState", "Stolen", "Navigation"])
def test_webhook_only_remote_types_are_accepted(remote_type: str) -> None:
    conforming(build_remote_events(CBID, [], [event(remote_type=remote_type)]))


def test_event_dates_are_sent_in_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    local = datetime(2026, 3, 1, 9, 30, tzinfo=paris)
    body = build_remote_events(CBID, [], [event(event_date=local)])
    assert body["events"][0]["eventDate"] == "2026-03-01T08:30:00.000Z"


def test_the_oracle_would_notice_a_wrong_status() -> None:
    """Guards the conformance checks above: a body the contract forbids is caught."""
    body = build_remote_events(CBID, [], [event()])
    body["events"][0]["eventStatus"]["status"] = "Exploded"
    assert errors("b2b-webhook", "RemoteEvents", body)


def test_encode_is_compact_utf8_json() -> None:
    body = build_remote_events(CBID, [{"key": "driver", "value": "Zoë"}], [event()])
    data = encode(body)
    assert b": " not in data
    assert b", " not in data
    assert "Zoë".encode() in data
    assert json.loads(data) == body
    assert data == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def test_encode_writes_an_integer_past_64_bits_too() -> None:
    """A partner's attribute may hold any JSON number; the body must still go out."""
    body = build_remote_events(CBID, [{"key": "fleetRef", "value": 2**70}], [event()])
    assert json.loads(encode(body))["attributes"] == [{"key": "fleetRef", "value": 2**70}]


REFUSALS = pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_type": "Done", "status": "Failed"}, "eventStatus.failureCause"),
        ({"failure_cause": "DoorsOpen"}, "eventStatus.failureCause"),
        (
            {"event_type": "Done", "status": "Failed", "failure_cause": "Sad"},
            "eventStatus.failureCause",
        ),
        ({"event_type": "Done", "status": "Accepted"}, "eventStatus.status"),
        ({"status": "Success"}, "eventStatus.status"),
        ({"event_type": "Failed"}, "eventStatus.type"),
        ({"feedback_detail": "Maybe"}, "eventStatus.feedbackDetail"),
        ({"remote_type": "Teleport"}, "remoteType"),
        ({"event_date": datetime(2026, 3, 1)}, "eventDate"),
        ({"seq": -1}, "sequence"),
    ],
)


@REFUSALS
def test_inconsistent_events_are_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(KeyfobError) as caught:
        build_remote_events(CBID, [], [event(**changes)])
    assert caught.value.message.startswith(field)


@REFUSALS
def test_a_corrupt_stored_event_is_refused_where_it_is_read_back(
    changes: dict[str, Any], field: str
) -> None:
    stored = event().as_json()
    stored.update({k: v.isoformat() if isinstance(v, datetime) else v for k, v in changes.items()})
    with pytest.raises(KeyfobError) as caught:
        stored_remote_event(stored)
    assert caught.value.message.startswith(field)


def test_a_stored_event_reads_back_as_the_record_it_was_written_from() -> None:
    paris = timezone(timedelta(hours=1))
    record = event(
        3,
        event_type="Done",
        status="Failed",
        failure_cause="CidInside",
        feedback_detail="CIDBlacklisted",
        event_date=datetime(2026, 3, 1, 9, 30, 0, 123_456, tzinfo=paris),
    )
    stored = json.loads(json.dumps(record.as_json()))
    assert stored_remote_event(stored) == remote_event(record)


def test_a_body_needs_at_least_one_event() -> None:
    with pytest.raises(KeyfobError, match="events"):
        build_remote_events(CBID, [], [])


def test_body_attributes_must_be_key_value_pairs() -> None:
    with pytest.raises(KeyfobError, match=r"attributes\[1\]"):
        build_remote_events(CBID, [{"key": "a", "value": "b"}, {"key": "c"}], [event()])
