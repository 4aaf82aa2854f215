"""The lifecycle's expiry (``Facts.expires_at``, the ``Keyfob-Expires-At`` extension): a remote
is never started, woken past, or sent after it; a sent one is left to its command deadline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from keyfob.remotes.lifecycle import Facts, Limits, Phase, Step, advance
from keyfob.vocabulary import RemoteType

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    wake_up_timeout=timedelta(seconds=60),
    command_timeout=timedelta(seconds=60),
    month_quota=100,
    short_limit=6,
    low_battery_percent=15.0,
)
FACTS = Facts(
    type=RemoteType.HORN,
    body={"horn": {"state": "Activated"}},
    phase=Phase.QUEUED,
    deadline_at=None,
    presence="asleep",
    status=None,
    entitled=True,
    same_action_in_progress=False,
    wake_ups_this_month=0,
    wake_ups_recent=0,
)
TIMEOUT = ("Done", "Failed", "VehicleConnectionTimeout", None)


def shape(step: Step) -> list[tuple[str, str, str | None, str | None]]:
    return [(str(t.value), s, c, f) for t, s, c, f in step.events]


def test_without_an_expiry_nothing_changes() -> None:
    step = advance(FACTS, NOW, LIMITS)
    assert step.phase == Phase.WAKING
    assert step.deadline_at == NOW + timedelta(seconds=60)


def test_an_expired_queued_remote_fails_without_a_wake_up() -> None:
    step = advance(replace(FACTS, expires_at=NOW), NOW, LIMITS)
    assert shape(step) == [TIMEOUT]
    assert not step.send_wake_up
    assert not step.send_command


def test_the_wake_up_deadline_is_the_expiry_when_sooner() -> None:
    expires = NOW + timedelta(seconds=20)
    step = advance(replace(FACTS, expires_at=expires), NOW, LIMITS)
    assert step.send_wake_up
    assert step.deadline_at == step.due_at == expires


def test_a_car_online_after_the_expiry_gets_no_command() -> None:
    waking = replace(FACTS, phase=Phase.WAKING, presence="online", deadline_at=NOW, expires_at=NOW)
    step = advance(waking, NOW, LIMITS)
    assert shape(step) == [TIMEOUT]
    assert not step.send_command
    before = replace(waking, expires_at=NOW + timedelta(seconds=1))
    assert advance(before, NOW, LIMITS).send_command


def test_a_sent_remote_is_left_to_its_command_deadline() -> None:
    sent = replace(
        FACTS,
        phase=Phase.SENT,
        presence="online",
        deadline_at=NOW + timedelta(seconds=30),
        expires_at=NOW - timedelta(seconds=1),
    )
    step = advance(sent, NOW, LIMITS)
    assert step.phase == Phase.SENT
