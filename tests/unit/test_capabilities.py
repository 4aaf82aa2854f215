"""Onboard capabilities per motorization, and the remotes a vehicle's capabilities refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.eligibility import ensure_vehicle_can
from keyfob.remotes.schemas import parse_remote_body
from keyfob.vehicles.capabilities import REMOTE_CAPABILITY_KEY, capabilities_for
from keyfob.vocabulary import Motorization, RemoteType
from oracle_schemas import assert_conforms, errors

ENERGY_TABLE = [
    # motorization, preconditioning, charging  (data catalog energy table, spec §9.4)
    (Motorization.THERMIC, False, False),
    (Motorization.ELECTRIC, True, True),
    (Motorization.HYBRID, True, True),
    (Motorization.HYDROGEN, True, False),
]

ONE_OF_EACH: dict[RemoteType, dict[str, Any]] = {
    RemoteType.THERMAL_PRECONDITIONING: {
        "preconditioning": {"airConditioning": {"immediate": True}}
    },
    RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST: {"charging": {"immediate": True}},
    RemoteType.DOORS: {"door": {"state": "Locked"}},
    RemoteType.HORN: {"horn": {"state": "Activated"}},
    RemoteType.LIGHTS: {"lights": {"on": True}},
    RemoteType.WAKE_UP: {"wakeUp": {}},
    RemoteType.NAVIGATION: {
        "navigation": {"positions": [{"type": "Point", "coordinates": [2, 48]}]}
    },
    RemoteType.IMMOBILIZATION: {"immobilization": {"activate": True}},
    RemoteType.STOLEN: {"stolen": {"stolen": True}},
}


def program(slot: int) -> dict[str, Any]:
    return {
        "slot": slot,
        "enabled": True,
        "start": "PT7H",
        "occurence": {"day": ["Mon"]},
    }


def refusal(capabilities: dict[str, Any], data: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(KeyfobError) as caught:
        ensure_vehicle_can(capabilities, parse_remote_body(data), **kwargs)
    assert caught.value.error is ErrorCode.NOT_SUPPORTED_BY_VEHICLE
    assert caught.value.status == 400
    return caught.value.message


def accepts(capabilities: dict[str, Any], data: dict[str, Any]) -> None:
    ensure_vehicle_can(capabilities, parse_remote_body(data))


def edited(motorization: Motorization, path: str, value: Any, **kwargs: Any) -> dict[str, Any]:
    """Capabilities of ``motorization`` with the value at dotted ``path`` replaced."""
    capabilities = copy.deepcopy(capabilities_for(motorization, **kwargs))
    *parents, last = path.split(".")
    node = capabilities
    for step in parents:
        node = node[step]
    node[last] = value
    return capabilities


# --- capabilities_for ---------------------------------------------------------------------


@pytest.mark.parametrize("motorization", list(Motorization))
@pytest.mark.parametrize("size", [0, 2, 4])
def test_capabilities_conform_to_the_official_schemas(
    motorization: Motorization, size: int
) -> None:
    capabilities = capabilities_for(motorization, programs_size=size)
    assert_conforms("b2b-api", "OnboardCapabilities", capabilities)
    assert_conforms("b2c-api", "OnboardCapabilities", capabilities)
    assert_conforms(
        "b2b-api",
        "VehicleCapabilities",
        {
            "vin": "VF3ABCDE0FG123456",
            "createdAt": "2026-01-01T00:00:00Z",
            "motorization": motorization.value,
            "_embedded": {"extension": {"onboardCapabilities": capabilities}},
        },
    )


@pytest.mark.parametrize(("motorization", "preconditioning", "charging"), ENERGY_TABLE)
def test_energy_table_decides_preconditioning_and_charging(
    motorization: Motorization, preconditioning: bool, charging: bool
) -> None:
    remote = capabilities_for(motorization)["remote"]
    assert remote["preconditioning"]["supported"] is preconditioning
    assert remote["preconditioning"]["parameters"]["immediate"] is preconditioning
    assert remote["charging"]["supported"] is charging
    assert remote["charging"]["parameters"]["immediate"] == {"start": charging, "stop": charging}
    assert remote["charging"]["parameters"]["schedule"]["nextDelayedTime"] is charging
    assert remote["charging"]["parameters"]["preferences"] == {"level": charging, "type": charging}
    for key in ("door", "horn", "lights", "wakeup", "navigation", "stolen"):
        assert remote[key]["supported"] is True
    assert "immobilization" not in remote


def test_every_remote_has_an_entry_with_its_scope_name() -> None:
    remote = capabilities_for(Motorization.THERMIC)["remote"]
    for name in ("preconditioning", "charging", "door", "horn", "lights", "wakeup", "navigation"):
        assert remote[name]["scopeName"] == f"remote:{name}:write"
    assert set(remote) == {
        "preconditioning", "charging", "door", "horn", "lights", "wakeup", "navigation", "stolen",
    }  # fmt: skip


def test_programs_size_bounds_both_program_lists() -> None:
    parameters = capabilities_for(Motorization.ELECTRIC, programs_size=2)["remote"]
    assert parameters["preconditioning"]["parameters"]["programs"] == {"size": 2}
    schedule = parameters["charging"]["parameters"]["schedule"]
    assert schedule["programs"] == {"supported": True, "size": 2}
    none = capabilities_for(Motorization.ELECTRIC, programs_size=0)["remote"]
    assert none["charging"]["parameters"]["schedule"]["programs"]["supported"] is False
    thermic = capabilities_for(Motorization.THERMIC)["remote"]
    assert thermic["preconditioning"]["parameters"]["programs"] == {"size": 0}


@pytest.mark.parametrize("size", [-1, 5])
def test_programs_size_outside_the_contract_is_a_programming_error(size: int) -> None:
    with pytest.raises(ValueError, match="programs_size"):
        capabilities_for(Motorization.ELECTRIC, programs_size=size)


def test_immobilization_extension_is_added_only_to_refuse_it() -> None:
    capabilities = capabilities_for(Motorization.HYBRID, immobilization=False)
    assert capabilities["remote"]["immobilization"] == {"supported": False}
    assert errors("b2b-api", "OnboardCapabilities", capabilities) == []


def test_official_schema_quirk_schedule_preferences_is_kept() -> None:
    capabilities = capabilities_for(Motorization.ELECTRIC)
    del capabilities["remote"]["charging"]["parameters"]["schedule"]["preferences"]
    assert errors("b2b-api", "OnboardCapabilities", capabilities) != []


@pytest.mark.parametrize(("motorization", "preconditioning", "charging"), ENERGY_TABLE)
def test_data_scopes_follow_the_energy(
    motorization: Motorization, preconditioning: bool, charging: bool
) -> None:
    data = capabilities_for(motorization)["data"]
    assert "data:telemetry" in data
    assert "data:position" in data
    assert ("data:telemetry:vehicle:preconditioning" in data) is preconditioning
    assert ("data:vehicle:devices:pnc" in data) is charging
    assert len(set(data)) == len(data)


def test_every_remote_type_has_a_capability_key() -> None:
    assert set(REMOTE_CAPABILITY_KEY) == set(RemoteType)
    remote = capabilities_for(Motorization.ELECTRIC)["remote"]
    for remote_type, key in REMOTE_CAPABILITY_KEY.items():
        assert key in remote or remote_type is RemoteType.IMMOBILIZATION
    assert REMOTE_CAPABILITY_KEY[RemoteType.WAKE_UP] == "wakeup"
    assert REMOTE_CAPABILITY_KEY[RemoteType.DOORS] == "door"


# --- ensure_vehicle_can: whole remote types -------------------------------------------------


@pytest.mark.parametrize(("motorization", "preconditioning", "charging"), ENERGY_TABLE)
@pytest.mark.parametrize("remote_type", list(RemoteType))
def test_each_motorization_accepts_exactly_its_remote_types(
    motorization: Motorization, preconditioning: bool, charging: bool, remote_type: RemoteType
) -> None:
    capabilities = capabilities_for(motorization)
    body = parse_remote_body(ONE_OF_EACH[remote_type])
    expected = {
        RemoteType.THERMAL_PRECONDITIONING: preconditioning,
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST: charging,
    }.get(remote_type, True)
    if expected:
        ensure_vehicle_can(capabilities, body, motorization=motorization)
    else:
        with pytest.raises(KeyfobError) as caught:
            ensure_vehicle_can(capabilities, body, motorization=motorization)
        assert caught.value.error is ErrorCode.NOT_SUPPORTED_BY_VEHICLE
        assert f"this vehicle cannot do {remote_type.value}" in caught.value.message
        assert f"motorization {motorization.value}" in caught.value.message


def test_without_motorization_the_message_names_the_capability() -> None:
    message = refusal(capabilities_for(Motorization.THERMIC), {"charging": {"immediate": True}})
    assert message == (
        "this vehicle cannot do ElectricBatteryChargingRequest "
        "(onboardCapabilities remote.charging.supported is not true)"
    )


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("lights", {"lights": {"on": True}}),
        ("wakeup", {"wakeUp": {}}),
        ("stolen", {"stolen": {"stolen": True}}),
        ("navigation", {"navigation": {"positions": [{"type": "Point", "coordinates": [1, 2]}]}}),
    ],
)
def test_a_type_marked_unsupported_or_missing_is_refused(key: str, data: dict[str, Any]) -> None:
    marked = edited(Motorization.ELECTRIC, f"remote.{key}.supported", False)
    assert f"remote.{key}.supported is not true" in refusal(marked, data)
    missing = copy.deepcopy(capabilities_for(Motorization.ELECTRIC))
    del missing["remote"][key]
    assert f"remote.{key}.supported" in refusal(missing, data)


def test_an_empty_capabilities_document_allows_only_immobilization() -> None:
    for remote_type, data in ONE_OF_EACH.items():
        if remote_type is RemoteType.IMMOBILIZATION:
            accepts({}, data)
        else:
            refusal({}, data)


def test_immobilization_refused_only_by_the_extension_entry() -> None:
    refusing = capabilities_for(Motorization.ELECTRIC, immobilization=False)
    message = refusal(refusing, {"immobilization": {"activate": False}}, motorization="Electric")
    assert "cannot do Immobilization" in message
    assert "remote.immobilization.supported" in message
    assert "stolen.immobilization: this vehicle cannot be immobilized" in refusal(
        refusing, {"stolen": {"immobilization": {"activate": True}}}
    )
    accepts(refusing, {"stolen": {"stolen": True}})
    accepts(
        capabilities_for(Motorization.THERMIC), {"stolen": {"immobilization": {"activate": True}}}
    )


# --- ensure_vehicle_can: parameters ---------------------------------------------------------


def test_preconditioning_programs_are_bounded_by_the_slot_count() -> None:
    two = capabilities_for(Motorization.ELECTRIC, programs_size=2)
    accepts(two, {"preconditioning": {"airConditioning": {"programs": [program(1), program(2)]}}})
    message = refusal(two, {"preconditioning": {"airConditioning": {"programs": [program(3)]}}})
    assert message == (
        "preconditioning.airConditioning.programs[0].slot: this vehicle has 2 program slot(s) "
        "(remote.preconditioning.parameters.programs.size = 2), got slot 3"
    )
    one = capabilities_for(Motorization.HYDROGEN, programs_size=1)
    message = refusal(
        one,
        {"preconditioning": {"airConditioning": {"programs": [
            program(1), {"slot": 2, "actionsType": "Delete"}]}}},
    )  # fmt: skip
    assert "preconditioning.airConditioning.programs: this vehicle has 1 program slot(s)" in message
    assert "got 2 programs" in message
    assert "programs[1].slot" in message


def test_preconditioning_without_programs_refuses_any_program() -> None:
    none = capabilities_for(Motorization.ELECTRIC, programs_size=0)
    accepts(none, {"preconditioning": {"airConditioning": {"immediate": True}}})
    assert "programs.size = 0" in refusal(
        none, {"preconditioning": {"airConditioning": {"programs": [program(1)]}}}
    )


def test_preconditioning_on_demand_needs_the_immediate_flag() -> None:
    caps = edited(Motorization.ELECTRIC, "remote.preconditioning.parameters.immediate", False)
    for immediate in (True, False):
        message = refusal(caps, {"preconditioning": {"airConditioning": {"immediate": immediate}}})
        assert message.startswith("preconditioning.airConditioning.immediate:")
        assert "remote.preconditioning.parameters.immediate is not true" in message
    accepts(caps, {"preconditioning": {"airConditioning": {"programs": [program(1)]}}})


@pytest.mark.parametrize(
    ("flag", "refused", "allowed"),
    [
        ("immediate.start", {"immediate": True}, {"immediate": False}),
        ("immediate.stop", {"immediate": False}, {"immediate": True}),
        (
            "schedule.nextDelayedTime",
            {"schedule": {"nextDelayedTime": "2026-01-01T22:00:00Z"}},
            {"schedule": {"programs": [{"start": "PT22H"}]}},
        ),
        (
            "schedule.programs.supported",
            {"schedule": {"programs": [{"start": "PT22H"}]}},
            {"schedule": {"nextDelayedTime": "2026-01-01T22:00:00Z"}},
        ),
        (
            "preferences.level",
            {"preferences": {"level": "Level2"}},
            {"preferences": {"type": "Full"}},
        ),
        (
            "preferences.type",
            {"preferences": {"type": "Full"}},
            {"preferences": {"level": "Level2"}},
        ),
    ],
)
def test_each_charging_flag_gates_its_own_request(
    flag: str, refused: dict[str, Any], allowed: dict[str, Any]
) -> None:
    caps = edited(Motorization.ELECTRIC, f"remote.charging.parameters.{flag}", False)
    message = refusal(caps, {"charging": refused})
    assert message.startswith("charging.")
    assert f"remote.charging.parameters.{flag} is not true" in message
    accepts(caps, {"charging": allowed})


def test_deprecated_delayed_time_needs_the_same_flag() -> None:
    caps = edited(Motorization.HYBRID, "remote.charging.parameters.schedule.nextDelayedTime", False)
    message = refusal(caps, {"charging": {"nextDelayedTime": "2026-01-01T22:00:00Z"}})
    assert message.startswith("charging.nextDelayedTime: this vehicle cannot delay a charge")


def test_charging_problems_are_reported_together() -> None:
    caps = edited(Motorization.ELECTRIC, "remote.charging.parameters.immediate.stop", False)
    caps["remote"]["charging"]["parameters"]["schedule"]["nextDelayedTime"] = False
    message = refusal(
        caps,
        {"charging": {"immediate": False, "schedule": {"nextDelayedTime": "2026-01-01T22:00:00Z"}}},
    )
    assert message.split("; ")[0].startswith("charging.immediate:")
    assert message.split("; ")[1].startswith("charging.schedule.nextDelayedTime:")


def test_charging_programs_are_bounded_by_the_schedule_size() -> None:
    two = capabilities_for(Motorization.ELECTRIC, programs_size=2)
    accepts(
        two,
        {"charging": {"schedule": {"programs": [{"start": "PT1H"}, {"slot": 2, "start": "PT2H"}]}}},
    )
    message = refusal(two, {"charging": {"schedule": {"programs": [{"slot": 4, "start": "PT1H"}]}}})
    assert message == (
        "charging.schedule.programs[0].slot: this vehicle has 2 program slot(s) "
        "(remote.charging.parameters.schedule.programs.size = 2), got slot 4"
    )
    message = refusal(two, {"charging": {"schedule": {"programs": [{"start": "PT1H"}] * 3}}})
    assert "charging.schedule.programs: this vehicle has 2 program slot(s)" in message


def test_charging_programs_without_a_declared_size_use_the_contract_maximum() -> None:
    caps = copy.deepcopy(capabilities_for(Motorization.ELECTRIC))
    del caps["remote"]["charging"]["parameters"]["schedule"]["programs"]["size"]
    accepts(
        caps,
        {
            "charging": {
                "schedule": {"programs": [{"slot": s, "start": "PT1H"} for s in (1, 2, 3, 4)]}
            }
        },
    )


def test_preferences_flags_are_also_read_from_the_schedule_entry() -> None:
    caps = copy.deepcopy(capabilities_for(Motorization.ELECTRIC))
    del caps["remote"]["charging"]["parameters"]["preferences"]
    caps["remote"]["charging"]["parameters"]["schedule"]["preferences"] = {
        "level": True,
        "type": False,
    }
    accepts(caps, {"charging": {"preferences": {"level": "Level1"}}})
    assert "preferences.type is not true" in refusal(
        caps, {"charging": {"preferences": {"type": "Full"}}}
    )
