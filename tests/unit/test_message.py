"""The user face's ``Message``: the b2c template's fields and not one more (decision 26)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyfob.errors import KeyfobError
from keyfob.notifications.message import (
    message,
    messages_body,
    remote_context,
    sequence_header,
)
from keyfob.notifications.payload import EventRecord, encode
from oracle_schemas import assert_conforms, errors

RID = "0f9a6c2e5b7d4e1f8a3b2c1d0e9f8a7b"
CBID = "c0ffee00c0ffee00c0ffee00c0ffee00"
AT = datetime(2026, 3, 1, 8, 0, 1, 250_000, tzinfo=UTC)
TOP = {"callbackId", "attributes", "type", "date", "remoteEvent"}


def stored(seq: int = 1, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": f"e{seq:031x}",
        "remote_id": RID,
        "seq": seq,
        "vin": "VF3ABCDE0FG123456",
        "event_date": AT + timedelta(seconds=seq),
        "remote_type": "Doors",
        "event_type": "Pending",
        "status": "Accepted",
    }
    fields.update(changes)
    record = EventRecord(**fields).as_json()
    # As the worker reads it back: stored JSON text, parsed.
    parsed: dict[str, Any] = json.loads(json.dumps(record))
    return parsed


def test_a_message_has_exactly_the_templates_fields() -> None:
    built = message(CBID, [{"key": "app", "value": "ha"}], stored())
    assert_conforms("b2c-webhook", "Message", built)
    assert built == {
        "callbackId": CBID,
        "attributes": [{"key": "app", "value": "ha"}],
        "type": "Remote",
        "date": "2026-03-01T08:00:02.250Z",
        "remoteEvent": {
            "remoteActionId": RID,
            "remoteType": "Doors",
            "eventStatus": {"type": "Pending", "status": "Accepted"},
        },
    }
    assert set(built) == TOP
    assert set(built["remoteEvent"]) == {"remoteActionId", "remoteType", "eventStatus"}


def test_a_failed_done_carries_its_cause_and_nothing_of_keyfobs() -> None:
    record = stored(
        4, event_type="Done", status="Failed", failure_cause="DoorsOpen", feedback_detail=None
    )
    built = message(CBID, [], record)
    assert_conforms("b2c-webhook", "Message", built)
    assert built["remoteEvent"]["eventStatus"] == {
        "type": "Done",
        "status": "Failed",
        "failureCause": "DoorsOpen",
    }
    text = encode(built).decode()
    for extension in ("eventId", "sequence", "vin", "eventDate", record["event_id"]):
        assert extension not in text


def test_one_message_is_an_object_several_an_array_in_order() -> None:
    first, second = message(CBID, [], stored(1)), message(CBID, [], stored(2))
    assert messages_body([first]) is first
    assert messages_body([first, second]) == [first, second]
    with pytest.raises(KeyfobError):
        messages_body([])
    body = json.loads(encode(messages_body([first, second])))
    assert isinstance(body, list)
    for item in body:
        assert_conforms("b2c-webhook", "Message", item)


def test_the_sequence_header_follows_the_array() -> None:
    records = [stored(3), stored(1, remote_id="another-remote"), stored(4)]
    assert sequence_header(records) == {"keyfob-sequence": "3,1,4"}
    assert sequence_header([stored(7)]) == {"keyfob-sequence": "7"}


@pytest.mark.parametrize(
    "changes",
    [
        {"remote_type": "Immobilization"},
        {"remote_type": "Stolen"},
        {"status": "Success"},
        {"event_type": "Done", "status": "Failed"},
    ],
)
def test_a_record_no_message_may_carry_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(KeyfobError):
        message(CBID, [], stored(**changes))


def test_attributes_must_be_key_value_pairs() -> None:
    with pytest.raises(KeyfobError):
        message(CBID, [{"key": "k", "value": "v", "type": "Body"}], stored())


def test_the_oracle_notices_an_extra_key_kept_out_by_the_builder() -> None:
    """Guard: the template's schema alone admits extra keys, so the builder's own shape (the
    exact key set above) is what keeps them out; the schema still refuses wrong types."""
    built = message(CBID, [], stored())
    assert not errors("b2c-webhook", "Message", {**built, "sequence": 1})
    assert errors("b2c-webhook", "Message", {**built, "type": "Alarm"})


def test_remote_context_keeps_only_what_there_is() -> None:
    assert remote_context(None, None, None) is None
    assert remote_context("front", [], {}) == {"label": "front"}
    own = [{"type": "Body", "key": "k", "value": "v"}]
    assert remote_context(None, own, {"webhook": own}) == {
        "attributes": own,
        "callbackAttributes": {"webhook": own},
    }
