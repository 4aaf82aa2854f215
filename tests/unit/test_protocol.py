"""Wire protocol v1: encoding, decoding, topics and the transport helpers every side relies on."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from keyfob.errors import KeyfobError
from keyfob.link.protocol import (
    ACTION_REMOTE_TYPES,
    FAILURE_CAUSES,
    FEEDBACK_DETAILS,
    Ack,
    AckState,
    Action,
    Command,
    Message,
    Outcome,
    Presence,
    PresenceState,
    ProtocolError,
    Result,
    Telemetry,
    WakeSignal,
    WireCause,
    WireFeedback,
    action_for,
    decode,
    encode,
    new_command,
)
from keyfob.link.topics import (
    PLATFORM_SUBSCRIPTIONS,
    UPLINK_SUBSCRIPTIONS,
    Channel,
    check_vin,
    decode_uplink,
    parse_vehicle_topic,
    parse_wakeup_topic,
    shared,
    vehicle_topic,
    wakeup_topic,
)
from keyfob.link.transport import (
    Backoff,
    TransportError,
    check_pattern,
    parse_broker_url,
    topic_matches,
)
from keyfob.vocabulary import FailureCause, FeedbackDetail, RemoteType

AT = datetime(2026, 3, 1, 8, 0, 1, 250_000, tzinfo=UTC)
VIN = "VF3ABCDE0FG123456"

VEHICLE_CAUSES = {
    "VehicleError",
    "WrongCommand",
    "DoorsOpen",
    "VehicleInUse",
    "VehicleErrorOrCidInside",
    "CidInside",
    "ExternalChargingSystemError",
    "VehicleChargingSystemError",
    "VehicleIsNotLocked",
    "CanceledByDriver",
    "NotPossibleDueToVehicleBatteryLevel",
    "NotPossibleDueToVehiclePrivacyLevel",
    "NotPossibleDueToVehicleStolenState",
    "TooManyRequestSent",
}


def command() -> Command:
    return Command("c0ffee", Action.DOOR, {"state": "Locked"}, AT, AT + timedelta(seconds=60))


MESSAGES: list[Message] = [
    command(),
    Ack("c0ffee", AckState.RECEIVED, AT),
    Ack("c0ffee", AckState.EXECUTING, AT),
    Result("c0ffee", Outcome.SUCCESS, AT, feedback=WireFeedback.KEY_NOT_BLACKLISTED),
    Result("c0ffee", Outcome.ALREADY_DONE, AT),
    Result("c0ffee", Outcome.FAILED, AT, WireCause.DOORS_OPEN),
    Telemetry(AT, {"doorsState": {"lockedStates": ["Locked"]}}),
    Presence(PresenceState.ASLEEP, AT),
    WakeSignal(AT),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_a_round_trip(message: Message) -> None:
    data = encode(message)
    kind: type[Any] = type(message)
    assert decode(kind, data) == message
    assert json.loads(data)["v"] == 1


def test_a_command_on_the_wire_carries_the_contract_body_and_utc_times() -> None:
    wire = json.loads(encode(command()))
    assert wire == {
        "v": 1,
        "id": "c0ffee",
        "action": "door",
        "params": {"state": "Locked"},
        "issuedAt": "2026-03-01T08:00:01.250Z",
        "expiresAt": "2026-03-01T08:01:01.250Z",
    }


def test_a_failed_result_names_its_cause_and_a_success_has_none() -> None:
    failed = json.loads(encode(Result("r", Outcome.FAILED, AT, WireCause.KEY_INSIDE)))
    assert failed["outcome"] == "failed"
    assert failed["cause"] == "keyInside"
    assert "cause" not in json.loads(encode(Result("r", Outcome.SUCCESS, AT)))
    with pytest.raises(ProtocolError, match=r"result\.cause"):
        Result("r", Outcome.FAILED, AT)
    with pytest.raises(ProtocolError, match=r"result\.cause"):
        Result("r", Outcome.SUCCESS, AT, WireCause.VEHICLE_ERROR)


def test_wire_causes_map_one_to_one_onto_the_vehicle_failure_causes() -> None:
    assert set(FAILURE_CAUSES) == set(WireCause)
    assert {cause.value for cause in FAILURE_CAUSES.values()} == VEHICLE_CAUSES
    assert len(set(FAILURE_CAUSES.values())) == len(FAILURE_CAUSES)
    result = Result("r", Outcome.FAILED, AT, WireCause.TOO_MANY_REQUESTS)
    assert result.failure_cause is FailureCause.TOO_MANY_REQUEST_SENT
    assert result.done_status.value == "Failed"


def test_feedback_maps_onto_the_contract_feedback_detail() -> None:
    assert set(FEEDBACK_DETAILS.values()) == set(FeedbackDetail)
    result = Result("r", Outcome.SUCCESS, AT, feedback=WireFeedback.KEY_BLACKLISTED)
    assert result.feedback_detail is FeedbackDetail.CID_BLACKLISTED


def test_actions_follow_decision_10() -> None:
    assert set(ACTION_REMOTE_TYPES.values()) == set(RemoteType)
    assert action_for(RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST) is Action.CHARGING
    assert action_for(RemoteType.DOORS) is Action.DOOR
    assert Action.WAKE_UP.value == "wakeUp"


def test_new_commands_get_fresh_ids_and_an_expiry() -> None:
    first = new_command(Action.HORN, {"state": "Activated"}, now=AT, ttl=timedelta(seconds=30))
    second = new_command(Action.HORN, {"state": "Activated"}, now=AT, ttl=timedelta(seconds=30))
    assert first.id != second.id
    assert first.expires_at == AT + timedelta(seconds=30)
    assert not first.expired(AT + timedelta(seconds=30))
    assert first.expired(AT + timedelta(seconds=31))
    with pytest.raises(ProtocolError, match="expiresAt"):
        new_command(Action.HORN, {}, now=AT, ttl=timedelta(0))


def test_times_keep_their_instant_whatever_the_offset() -> None:
    wire = json.loads(encode(command()))
    wire["issuedAt"] = "2026-03-01T10:00:01.250+02:00"
    decoded = decode(Command, json.dumps(wire).encode())
    assert decoded.issued_at == AT


def _command_with(**changes: object) -> bytes:
    wire = json.loads(encode(command()))
    for key, value in changes.items():
        if value is None:
            del wire[key]
        else:
            wire[key] = value
    return json.dumps(wire).encode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\xff\xfe", "command: not a UTF-8 JSON"),
        (b"{not json", "command: not a UTF-8 JSON"),
        (b"[1, 2]", "command: expected a JSON object"),
        (b'{"v": NaN}', "command: not a UTF-8 JSON"),
        (_command_with(v=2), "command.v: unsupported protocol version 2"),
        (_command_with(v=True), "command.v: expected an integer"),
        (_command_with(v=None), "command.v: required field is missing"),
        (_command_with(id=None), "command.id: required field is missing"),
        (_command_with(id=""), "command.id: expected 1 to 64"),
        (_command_with(id=7), "command.id: expected a string"),
        (_command_with(action="unlock"), "command.action: 'unlock' is not one of"),
        (_command_with(params=[1]), "command.params: expected an object"),
        (_command_with(issuedAt="yesterday"), "command.issuedAt: expected an RFC 3339"),
        (_command_with(expiresAt="2026-03-01T08:00:00"), "command.expiresAt: expected an RFC"),
        (_command_with(expiresAt="2026-03-01T07:00:00Z"), "command.expiresAt: earlier than"),
        (b'{"v": 1, "pad": "' + b"x" * 300_000 + b'"}', "larger than"),
    ],
)
def test_bad_commands_are_refused_with_the_field_named(data: bytes, field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(Command, data)
    assert field in caught.value.message
    assert isinstance(caught.value, KeyfobError)


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        (Result, {"id": "r", "outcome": "failed", "at": "2026-01-01T00:00:00Z"}, "result.cause"),
        (Result, {"id": "r", "outcome": "won", "at": "2026-01-01T00:00:00Z"}, "result.outcome"),
        (
            Result,
            {"id": "r", "outcome": "failed", "cause": "DoorsOpen", "at": "2026-01-01T00:00:00Z"},
            "result.cause: 'DoorsOpen' is not one of",
        ),
        (Ack, {"id": "r", "state": "done", "at": "2026-01-01T00:00:00Z"}, "ack.state"),
        (Ack, {"id": "r", "state": "received"}, "ack.at: required field is missing"),
        (Presence, {"state": "gone", "at": "2026-01-01T00:00:00Z"}, "presence.state"),
        (Telemetry, {"status": [], "at": "2026-01-01T00:00:00Z"}, "telemetry.status"),
    ],
)
def test_bad_vehicle_messages_are_refused_with_the_field_named(
    kind: type, body: dict[str, object], field: str
) -> None:
    with pytest.raises(ProtocolError, match=field):
        decode(kind, json.dumps({"v": 1, **body}).encode())


def test_topics_are_versioned_per_vehicle() -> None:
    assert vehicle_topic(VIN, Channel.CMD) == f"keyfob/v1/vehicles/{VIN}/cmd"
    assert wakeup_topic(VIN) == f"keyfob/v1/wakeup/{VIN}"
    assert parse_vehicle_topic(f"keyfob/v1/vehicles/{VIN}/result") == (VIN, Channel.RESULT)
    assert parse_wakeup_topic(f"keyfob/v1/wakeup/{VIN}") == VIN
    assert "keyfob/v1/vehicles/+/cmd" not in PLATFORM_SUBSCRIPTIONS
    assert all(
        topic_matches(p, "keyfob/v1/vehicles/X/cmd") is False for p in PLATFORM_SUBSCRIPTIONS
    )
    for channel in ("result", "status", "presence"):
        topic = f"keyfob/v1/vehicles/{VIN}/{channel}"
        assert any(topic_matches(p, topic) for p in PLATFORM_SUBSCRIPTIONS)
    ack = f"keyfob/v1/vehicles/{VIN}/ack"
    assert not any(topic_matches(p, ack) for p in PLATFORM_SUBSCRIPTIONS), "acks change nothing"
    assert any(topic_matches(p, ack) for p in UPLINK_SUBSCRIPTIONS)


@pytest.mark.parametrize("vin", ["", "VF3+", "VF3#", "VF3/other", "a b", "x" * 65, "é"])
def test_vins_that_could_escape_their_topic_level_are_refused(vin: str) -> None:
    with pytest.raises(ProtocolError, match="vin:"):
        check_vin(vin)
    with pytest.raises(ProtocolError):
        vehicle_topic(vin, Channel.CMD)


@pytest.mark.parametrize(
    "topic",
    [
        "keyfob/v1/vehicles/VIN/unknown",
        "keyfob/v1/vehicles/VIN",
        "keyfob/v2/vehicles/VIN/ack",
        "keyfob/v1/vehicles/VIN/ack/extra",
    ],
)
def test_unknown_vehicle_topics_are_refused(topic: str) -> None:
    with pytest.raises(ProtocolError, match="topic"):
        parse_vehicle_topic(topic)


def test_uplinks_decode_by_channel() -> None:
    uplink = decode_uplink(
        f"keyfob/v1/vehicles/{VIN}/presence", encode(Presence(PresenceState.ONLINE, AT))
    )
    assert (uplink.vin, uplink.channel) == (VIN, Channel.PRESENCE)
    assert uplink.message == Presence(PresenceState.ONLINE, AT)
    with pytest.raises(ProtocolError, match="not a vehicle-to-platform"):
        decode_uplink(f"keyfob/v1/vehicles/{VIN}/cmd", encode(command()))
    with pytest.raises(ProtocolError, match="ack"):
        decode_uplink(f"keyfob/v1/vehicles/{VIN}/ack", encode(Presence(PresenceState.ONLINE, AT)))


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/+", "a/b/c", False),
        ("a/#", "a/b/c", True),
        ("a/#", "a", True),
        ("#", "a/b", True),
        ("+/b", "/b", True),
        ("#", "$SYS/broker", False),
        ("+/broker", "$SYS/broker", False),
        ("$share/g/a/+", "a/b", True),
    ],
)
def test_topic_matching_follows_mqtt(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


@pytest.mark.parametrize("pattern", ["a/#/b", "a/b#", "a+/b", ""])
def test_misplaced_wildcards_are_refused(pattern: str) -> None:
    with pytest.raises(TransportError, match="pattern"):
        check_pattern(pattern)


def test_shared_subscriptions_name_their_group() -> None:
    assert shared("dispatchers", "keyfob/v1/vehicles/+/result") == (
        "$share/dispatchers/keyfob/v1/vehicles/+/result"
    )
    with pytest.raises(ProtocolError, match="group"):
        shared("a/b", "x")


def test_backoff_grows_with_jitter_and_stays_capped() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, maximum=8.0)
    rng = random.Random(3)
    delays = [[backoff.delay(attempt, rng) for _ in range(50)] for attempt in range(6)]
    assert all(0.5 <= d <= 1.0 for d in delays[0])
    assert all(2.0 <= d <= 4.0 for d in delays[2])
    assert all(4.0 <= d <= 8.0 for d in delays[5])
    assert len(set(delays[2])) > 10  # jittered, not a fixed value
    assert backoff.delay(10_000, rng) <= 8.0


def test_broker_urls_carry_credentials() -> None:
    address = parse_broker_url("mqtt://veh%40icle:p%3Ass@broker.example:1884")
    assert (address.host, address.port, address.tls) == ("broker.example", 1884, False)
    assert (address.username, address.password) == ("veh@icle", "p:ss")
    secure = parse_broker_url("mqtts://broker.example")
    assert (secure.port, secure.tls, secure.username) == (8883, True, None)
    assert parse_broker_url("mqtt://127.0.0.1").port == 1883


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker", "scheme"),
        ("mqtt://", "host"),
        ("mqtt://broker:99999", "port"),
        ("mqtt://broker/topic", "path"),
    ],
)
def test_bad_broker_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(TransportError, match=f"mqtt url: .*{problem}"):
        parse_broker_url(url)


def test_other_offsets_are_normalised_to_utc_on_the_wire() -> None:
    paris = timezone(timedelta(hours=1))
    message = Presence(PresenceState.ONLINE, datetime(2026, 1, 1, 9, 0, tzinfo=paris))
    assert json.loads(encode(message))["at"] == "2026-01-01T08:00:00.000Z"


def test_an_encoded_message_holds_no_more_memory_than_its_bytes() -> None:
    """The simulator keeps a will per vehicle: ten thousand of them must stay small."""
    import tracemalloc

    presence = Presence(PresenceState.OFFLINE, datetime(2026, 1, 1, tzinfo=UTC))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode(presence) for _ in range(2000)]
        per_message = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_message < len(kept[0]) + 200
