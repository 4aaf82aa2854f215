"""Every path of the remote lifecycle (§1.2), through the pure ``advance`` function."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyfob.remotes.lifecycle import ACTIVE_PHASES, UNDER_WAY, Facts, Limits, Phase, advance
from keyfob.remotes.models import ACTIVE
from keyfob.vocabulary import RemoteType

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    wake_up_timeout=timedelta(seconds=60),
    command_timeout=timedelta(seconds=30),
    month_quota=100,
    short_limit=6,
    low_battery_percent=15.0,
)


def status(**parts: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"privacy": {"state": "None"}}
    document.update(parts)
    return document


def ev(level: float, plugged: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "type": "Electric",
            "level": level,
            "extension": {"electric": {"charging": {"plugged": plugged}}},
        }
    ]


def facts(type_: RemoteType = RemoteType.DOORS, **changes: Any) -> Facts:
    body = {"door": {"state": "Locked"}}
    base = Facts(
        type=type_,
        body=body,
        phase=Phase.QUEUED,
        deadline_at=None,
        presence="online",
        status=status(),
        entitled=True,
        same_action_in_progress=False,
        wake_ups_this_month=0,
        wake_ups_recent=0,
    )
    return replace(base, **changes)


def statuses(step: Any) -> list[tuple[str, str, str | None]]:
    return [(kind.value, value, cause) for kind, value, cause, _ in step.events]


def test_awake_vehicle_gets_the_command_at_once() -> None:
    step = advance(facts(), NOW, LIMITS)
    assert statuses(step) == [
        ("Pending", "CheckingVehicle", None),
        ("Pending", "SentToVehicle", None),
    ]
    assert step.phase == "sent"
    assert step.send_command
    assert not step.send_wake_up
    assert step.deadline_at == NOW + LIMITS.command_timeout


def test_sleeping_vehicle_is_woken_first() -> None:
    step = advance(facts(presence="asleep"), NOW, LIMITS)
    assert statuses(step) == [("Pending", "WakingUpVehicle", None)]
    assert step.phase == "waking"
    assert step.send_wake_up
    assert not step.send_command
    assert step.due_at == NOW + LIMITS.wake_up_timeout


def test_a_vehicle_never_heard_of_is_woken_too() -> None:
    assert advance(facts(presence="unknown"), NOW, LIMITS).send_wake_up


def test_woken_vehicle_gets_the_command() -> None:
    waking = facts(phase="waking", deadline_at=NOW + timedelta(seconds=20))
    step = advance(waking, NOW, LIMITS)
    assert [s for _, s, _ in statuses(step)] == ["CheckingVehicle", "SentToVehicle"]
    assert step.send_command


def test_vehicle_that_does_not_wake_in_time_times_out() -> None:
    waking = facts(phase="waking", presence="asleep", deadline_at=NOW)
    assert statuses(advance(waking, NOW, LIMITS)) == [
        ("Done", "Failed", "VehicleConnectionTimeout")
    ]


def test_waking_vehicle_before_its_deadline_keeps_waiting() -> None:
    deadline = NOW + timedelta(seconds=10)
    step = advance(facts(phase="waking", presence="asleep", deadline_at=deadline), NOW, LIMITS)
    assert step.events == []
    assert step.phase == "waking"
    assert step.due_at == deadline


def test_command_without_an_answer_times_out() -> None:
    sent = facts(phase="sent", deadline_at=NOW - timedelta(seconds=1))
    assert statuses(advance(sent, NOW, LIMITS)) == [("Done", "Failed", "VehicleConnectionTimeout")]


def test_a_deadline_that_passed_while_the_link_was_down_waits_for_the_answers_held_back() -> None:
    sent = facts(phase="sent", deadline_at=NOW - timedelta(seconds=1))
    down = advance(sent, NOW, LIMITS, heard_since=None)
    assert (down.events, down.phase, down.send_command) == ([], Phase.SENT, False)
    assert down.deadline_at == sent.deadline_at
    back = NOW - timedelta(seconds=10)  # the link came up again 10 s ago
    waiting = advance(sent, NOW, LIMITS, heard_since=back)
    assert (waiting.events, waiting.send_command) == ([], False)
    assert waiting.due_at == back + LIMITS.command_timeout
    later = advance(sent, back + LIMITS.command_timeout, LIMITS, heard_since=back)
    assert statuses(later) == [("Done", "Failed", "VehicleConnectionTimeout")]


def test_unpublished_command_is_published_again_under_its_id() -> None:
    deadline = NOW + timedelta(seconds=25)
    step = advance(facts(phase="sent", deadline_at=deadline), NOW, LIMITS)
    assert step.events == []
    assert step.send_command
    assert step.deadline_at == deadline


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"entitled": False}, [("Done", "Failed", "MissingRights")]),
        ({"same_action_in_progress": True}, [("Done", "Failed", "SameActionInProgress")]),
        (
            {"status": status(privacy={"state": "Full"})},
            [("Done", "Failed", "NotPossibleDueToVehiclePrivacyLevel")],
        ),
        (
            {"presence": "asleep", "wake_ups_this_month": 100},
            [
                ("Pending", "TooManyWakeUpsOverMonth", None),
                ("Done", "Failed", "TooManyWakeUpsOverMonth"),
            ],
        ),
        (
            {"presence": "asleep", "wake_ups_recent": 6},
            [("Done", "Failed", "TooManyRequestInShortTime")],
        ),
    ],
)
def test_refusals_before_anything_is_sent(
    changes: dict[str, Any], expected: list[tuple[str, str, str | None]]
) -> None:
    step = advance(facts(**changes), NOW, LIMITS)
    assert statuses(step) == expected
    assert step.phase == "done"
    assert not step.send_command
    assert not step.send_wake_up


def test_awake_vehicle_spends_no_wake_up_budget() -> None:
    step = advance(facts(wake_ups_this_month=500, wake_ups_recent=50), NOW, LIMITS)
    assert step.send_command


def test_stolen_vehicle_refuses_unlock_but_not_lock() -> None:
    stolen = status(stolen={"state": True})
    unlock = facts(body={"door": {"state": "Unlocked"}}, status=stolen)
    assert statuses(advance(unlock, NOW, LIMITS)) == [
        ("Done", "Failed", "NotPossibleDueToVehicleStolenState")
    ]
    assert advance(facts(status=stolen), NOW, LIMITS).send_command


def test_privacy_does_not_stop_security_actions() -> None:
    private = status(privacy={"state": "Full"})
    stolen = facts(RemoteType.STOLEN, body={"stolen": {"stolen": True}}, status=private)
    assert advance(stolen, NOW, LIMITS).send_command


def test_low_traction_battery_refuses_immediate_preconditioning() -> None:
    body = {"preconditioning": {"airConditioning": {"immediate": True}}}
    low = facts(RemoteType.THERMAL_PRECONDITIONING, body=body, status=status(energies=ev(9.5)))
    assert statuses(advance(low, NOW, LIMITS)) == [
        ("Pending", "VehicleBatteryChargeTooLow", None),
        ("Done", "Failed", "NotPossibleDueToVehicleBatteryLevel"),
    ]
    plugged = replace(low, status=status(energies=ev(9.5, plugged=True)))
    assert advance(plugged, NOW, LIMITS).send_command


def test_navigation_announces_neither_checking_again_nor_waking() -> None:
    body = {"navigation": {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}}
    asleep = facts(RemoteType.NAVIGATION, body=body, presence="asleep")
    step = advance(asleep, NOW, LIMITS)
    assert step.events == []
    assert step.send_wake_up
    woken = replace(
        asleep, phase="waking", presence="online", deadline_at=NOW + LIMITS.wake_up_timeout
    )
    assert [s for _, s, _ in statuses(advance(woken, NOW, LIMITS))] == ["SentToVehicle"]


def test_phases_are_stored_as_the_same_four_strings() -> None:
    """Rows already in a database carry these values: renaming one would strand them."""
    assert [str(p) for p in Phase] == ["queued", "waking", "sent", "done"]
    assert set(ACTIVE_PHASES) == set(Phase) - {Phase.DONE}
    assert set(UNDER_WAY) == set(ACTIVE_PHASES) - {Phase.QUEUED}


LATER = NOW + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Phase.SENT),
        ({"presence": "asleep"}, Phase.WAKING),
        ({"entitled": False}, Phase.DONE),
        ({"phase": "waking", "deadline_at": LATER}, Phase.SENT),
        ({"phase": "waking", "presence": "asleep", "deadline_at": LATER}, Phase.WAKING),
        ({"phase": "waking", "presence": "asleep", "deadline_at": NOW}, Phase.DONE),
        ({"phase": "sent", "deadline_at": LATER}, Phase.SENT),
        ({"phase": "sent", "deadline_at": NOW}, Phase.DONE),
    ],
)
def test_every_step_names_its_phase_as_a_phase(changes: dict[str, Any], expected: Phase) -> None:
    assert advance(facts(**changes), NOW, LIMITS).phase is expected


def test_the_queue_index_holds_the_active_phases() -> None:
    assert set(ACTIVE) == {phase.value for phase in ACTIVE_PHASES}
