"""The fleet Remote body: what is accepted, how it is stored, and how each refusal reads."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.bodies.charging import ChargingAction
from keyfob.remotes.schemas import ACTION_TYPES, RemoteBody, parse_remote_body
from keyfob.vocabulary import RemoteType
from oracle_schemas import document, errors

PROGRAM = {
    "slot": 1,
    "actionsType": "Set",
    "enabled": True,
    "recurrence": "Daily",
    "start": "PT14H30M",
    "occurence": {"day": ["Mon", "Tue"]},
}


def point(lon: float, lat: float, *alt: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat, *alt]}


def program(**changes: Any) -> dict[str, Any]:
    return {**PROGRAM, **changes}


def precond(**air: Any) -> dict[str, Any]:
    return {"preconditioning": {"airConditioning": air}}


@cache
def remote_validator() -> OAS30Validator:
    """The official ``Remote`` schema from the oracle, with one extraction defect corrected.

    The extracted oracle reads RemoteLights' ``on`` as the YAML 1.1 boolean ``true`` (so it
    requires a property named ``True``); that one schema is corrected here, nothing else.
    """
    components = copy.deepcopy(document("b2b-api")["components"])
    lights = components["schemas"]["RemoteLights"]
    if True in lights.get("required", []):
        lights["properties"] = {"on": lights["properties"].pop("true")}
        lights["required"] = ["on"]
    return OAS30Validator({"components": components, "$ref": "#/components/schemas/Remote"})


def remote_errors(stored: dict[str, Any]) -> list[str]:
    """Every way ``stored`` breaks the official ``Remote`` schema."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in remote_validator().iter_errors(stored)]


def refusal(data: object) -> KeyfobError:
    with pytest.raises(KeyfobError) as caught:
        parse_remote_body(data)
    message = caught.value.message
    assert "Input should" not in message
    assert "pydantic" not in message.lower()
    return caught.value


VALID: list[tuple[str, dict[str, Any], RemoteType]] = [
    ("precond-now", precond(immediate=True), RemoteType.THERMAL_PRECONDITIONING),
    ("precond-stop", precond(immediate=False), RemoteType.THERMAL_PRECONDITIONING),
    ("precond-set", precond(programs=[PROGRAM]), RemoteType.THERMAL_PRECONDITIONING),
    (
        "precond-doc",
        precond(immediate=False, programs=[PROGRAM, {"slot": 2, "actionsType": "Delete"}]),
        RemoteType.THERMAL_PRECONDITIONING,
    ),
    (
        "precond-four",
        precond(
            programs=[
                program(slot=s, start=t)
                for s, t in [(1, "PT0S"), (2, "PT8H"), (3, "PT23H59M59S"), (4, "PT90M")]
            ]
        ),
        RemoteType.THERMAL_PRECONDITIONING,
    ),
    (
        "precond-no-recurrence",
        precond(programs=[program(recurrence="None", start="P0DT7H", occurence={"day": ["Sun"]})]),
        RemoteType.THERMAL_PRECONDITIONING,
    ),
    (
        "charge-start",
        {"charging": {"immediate": True}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-stop",
        {"charging": {"immediate": False}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-delay",
        {"charging": {"schedule": {"nextDelayedTime": "2024-01-01T22:30:00Z"}}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-delay-offset",
        {
            "charging": {
                "immediate": False,
                "schedule": {"nextDelayedTime": "2024-06-30T23:59:59.250+02:00"},
            }
        },
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-programs",
        {
            "charging": {
                "schedule": {
                    "programs": [
                        {
                            "slot": 1,
                            "enabled": True,
                            "start": "PT22H",
                            "end": "PT6H",
                            "occurence": {"day": ["Mon", "Tue", "Wed", "Thu", "Fri"]},
                        },
                        {"slot": 2, "start": "PT1H", "chargeUntilFull": True},
                        {"start": "PT3H"},
                    ]
                }
            }
        },
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-deprecated-delay",
        {"charging": {"nextDelayedTime": "2024-01-01T22:30:00+01:00"}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-preferences",
        {"charging": {"preferences": {"level": "Level3", "type": "Partial"}}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-level-only",
        {"charging": {"preferences": {"level": "Level5"}}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    (
        "charge-type-only",
        {"charging": {"preferences": {"type": "Full"}}},
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    ),
    ("door-lock", {"label": "lock", "door": {"state": "Locked"}}, RemoteType.DOORS),
    ("door-unlock", {"door": {"state": "Unlocked"}}, RemoteType.DOORS),
    ("door-forced", {"door": {"state": "Locked", "forced": True}}, RemoteType.DOORS),
    ("horn-on", {"horn": {"state": "Activated"}}, RemoteType.HORN),
    ("horn-off", {"horn": {"state": "Unactivated"}}, RemoteType.HORN),
    ("lights-on", {"lights": {"on": True}}, RemoteType.LIGHTS),
    ("lights-off", {"label": "", "lights": {"on": False}}, RemoteType.LIGHTS),
    ("wake-empty", {"wakeUp": {}}, RemoteType.WAKE_UP),
    ("wake-explicit", {"wakeUp": {"action": "WakeUp"}}, RemoteType.WAKE_UP),
    ("nav-one", {"navigation": {"positions": [point(2.3522, 48.8566)]}}, RemoteType.NAVIGATION),
    (
        "nav-ten",
        {"navigation": {"positions": [point(i, -i) for i in range(10)], "driverApproval": True}},
        RemoteType.NAVIGATION,
    ),
    (
        "nav-bounds",
        {"navigation": {"positions": [point(-180, 90), point(180, -90, 1520.5)]}},
        RemoteType.NAVIGATION,
    ),
    ("immobilize", {"immobilization": {"activate": True}}, RemoteType.IMMOBILIZATION),
    ("release", {"immobilization": {"activate": False}}, RemoteType.IMMOBILIZATION),
    ("stolen", {"stolen": {"stolen": True}}, RemoteType.STOLEN),
    ("recovered", {"stolen": {"stolen": False}}, RemoteType.STOLEN),
    (
        "tracking",
        {"stolen": {"trackingPeriod": {"running": 5, "shutdown": 60}}},
        RemoteType.STOLEN,
    ),
    ("tracking-running", {"stolen": {"trackingPeriod": {"running": 30}}}, RemoteType.STOLEN),
    ("tracking-shutdown", {"stolen": {"trackingPeriod": {"shutdown": 120}}}, RemoteType.STOLEN),
    (
        "stolen-immobilize",
        {"stolen": {"immobilization": {"activate": True}}},
        RemoteType.STOLEN,
    ),
]


@pytest.mark.parametrize(("data", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_bodies_are_accepted_typed_and_stored_in_the_official_shape(
    data: dict[str, Any], expected: RemoteType
) -> None:
    original = json.dumps(data)
    body = parse_remote_body(data)

    assert body.type is expected
    assert body.action in data
    assert body.label == data.get("label")
    stored = body.to_stored()
    assert remote_errors(stored) == []
    assert json.loads(json.dumps(stored)) == stored
    assert parse_remote_body(stored).to_stored() == stored
    assert json.dumps(data) == original


def test_every_action_member_maps_to_its_remote_type() -> None:
    assert ACTION_TYPES == {
        "preconditioning": RemoteType.THERMAL_PRECONDITIONING,
        "charging": RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
        "door": RemoteType.DOORS,
        "horn": RemoteType.HORN,
        "lights": RemoteType.LIGHTS,
        "wakeUp": RemoteType.WAKE_UP,
        "navigation": RemoteType.NAVIGATION,
        "immobilization": RemoteType.IMMOBILIZATION,
        "stolen": RemoteType.STOLEN,
    }
    assert {entry[2] for entry in VALID} == set(RemoteType)


@pytest.mark.parametrize(
    ("data", "stored"),
    [
        ({"wakeUp": {}}, {"wakeUp": {"action": "WakeUp"}}),
        ({"door": {"state": "Locked"}}, {"door": {"state": "Locked"}}),
        (
            precond(
                programs=[
                    {k: v for k, v in PROGRAM.items() if k not in {"actionsType", "recurrence"}}
                ]
            ),
            precond(programs=[PROGRAM]),
        ),
        (
            precond(programs=[{"slot": 3, "actionsType": "Delete"}]),
            precond(programs=[{"slot": 3, "actionsType": "Delete", "start": "PT0S"}]),
        ),
        (
            precond(programs=[program(slot=2, actionsType="Delete", start="PT7H")]),
            precond(programs=[{"slot": 2, "actionsType": "Delete", "start": "PT7H"}]),
        ),
        (
            {"charging": {"nextDelayedTime": "2024-01-01T22:30:00Z"}},
            {"charging": {"nextDelayedTime": "2024-01-01T22:30:00Z"}},
        ),
        (
            {"navigation": {"positions": [point(2, 48)]}},
            {"navigation": {"positions": [point(2.0, 48.0)]}},
        ),
        (
            {"label": "night", "stolen": {"trackingPeriod": {"running": 30}}},
            {"label": "night", "stolen": {"trackingPeriod": {"running": 30}}},
        ),
    ],
    ids=[
        "wake-default",
        "no-forced",
        "program-defaults",
        "delete-start",
        "delete-trimmed",
        "deprecated-kept",
        "numbers",
        "partial-tracking",
    ],
)
def test_stored_body_fills_contract_defaults_and_omits_absent_members(
    data: dict[str, Any], stored: dict[str, Any]
) -> None:
    assert parse_remote_body(data).to_stored() == stored


def test_charging_exposes_the_delayed_start_from_either_place() -> None:
    old = parse_remote_body({"charging": {"nextDelayedTime": "2024-01-01T22:30:00Z"}})
    new = parse_remote_body({"charging": {"schedule": {"nextDelayedTime": "2024-02-01T06:00:00Z"}}})
    now = parse_remote_body({"charging": {"immediate": True}})
    assert isinstance(old.payload, ChargingAction)
    assert isinstance(new.payload, ChargingAction)
    assert isinstance(now.payload, ChargingAction)
    assert old.payload.delayed_start == "2024-01-01T22:30:00Z"
    assert new.payload.delayed_start == "2024-02-01T06:00:00Z"
    assert now.payload.delayed_start is None
    assert now.payload.programs == []


def test_remote_body_is_immutable() -> None:
    body = parse_remote_body({"door": {"state": "Locked"}})
    assert isinstance(body, RemoteBody)
    with pytest.raises(AttributeError):
        body.action = "horn"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        body.payload.state = "Unlocked"  # type: ignore[misc,union-attr]


@pytest.mark.parametrize(
    ("legacy", "data", "current"),
    [
        (
            "preonditionning",
            {"preonditionning": {"airConditioning": {"immediate": True}}},
            "preconditioning",
        ),
        ("ligths", {"ligths": {"on": True}}, "lights"),
        ("state", {"state": {"action": "state"}}, "wakeUp"),
        ("ligths", {"ligths": {"on": True}, "door": {"state": "Locked"}, "bogus": 1}, "lights"),
    ],
)
def test_legacy_members_are_refused_with_the_current_name(
    legacy: str, data: dict[str, Any], current: str
) -> None:
    error = refusal(data)
    assert error.error is ErrorCode.LEGACY_FIELD
    assert error.status == 400
    assert error.message.startswith(f"{legacy}:")
    assert f"use {current}" in error.message


def charging(**members: Any) -> dict[str, Any]:
    return {"charging": members}


def stolen(**members: Any) -> dict[str, Any]:
    return {"stolen": members}


INVALID: list[tuple[str, object, list[str]]] = [
    # the envelope
    ("not-object", ["door"], ["the body must be a JSON object (got a list)"]),
    ("string", "door", ["the body must be a JSON object (got 'door')"]),
    (
        "empty",
        {},
        [
            "exactly one action among preconditioning, charging, door, horn, lights, "
            "wakeUp, navigation, immobilization, stolen"
        ],
    ),
    ("label-only", {"label": "x"}, ["exactly one action among"]),
    (
        "two-actions",
        {"door": {"state": "Locked"}, "horn": {"state": "Activated"}},
        ["exactly one action (found door, horn)"],
    ),
    (
        "three-actions",
        {"lights": {"on": True}, "wakeUp": {}, "stolen": {"stolen": True}},
        ["(found lights, wakeUp, stolen)"],
    ),
    (
        "unknown-member",
        {"door": {"state": "Locked"}, "window": {}, "seat": 1},
        ["unknown members window, seat (allowed: label, preconditioning"],
    ),
    (
        "b2c-attributes",
        {"door": {"state": "Locked"}, "attributes": []},
        ["attributes: only the end-user (v4) API accepts"],
    ),
    (
        "b2c-callback-attributes",
        {"door": {"state": "Locked"}, "callbackAttributes": {}},
        ["callbackAttributes: only the end-user (v4) API accepts"],
    ),
    ("label-type", {"label": 5, "door": {"state": "Locked"}}, ["label: must be a string (got 5)"]),
    ("label-null", {"label": None, "door": {"state": "Locked"}}, ["label: must not be null"]),
    ("action-null", {"door": None}, ["door: must not be null"]),
    (
        "nested-null",
        {"door": {"state": "Locked", "forced": None}},
        ["door.forced: must not be null"],
    ),
    ("action-not-object", {"horn": "Activated"}, ["horn: must be an object (got 'Activated')"]),
    ("action-list", {"lights": [True]}, ["lights: must be an object (got a list)"]),
    # door, horn, lights, wakeUp, immobilization
    (
        "door-enum",
        {"door": {"state": "Lockd"}},
        ["door.state: must be one of Unlocked, Locked (got 'Lockd')"],
    ),
    ("door-case", {"door": {"state": "locked"}}, ["door.state: must be one of Unlocked, Locked"]),
    ("door-missing", {"door": {}}, ["door.state: is required"]),
    (
        "door-extra",
        {"door": {"state": "Locked", "speed": 3}},
        ["door: unknown field speed (allowed: state, forced)"],
    ),
    (
        "horn-enum",
        {"horn": {"state": "On"}},
        ["horn.state: must be one of Activated, Unactivated (got 'On')"],
    ),
    (
        "horn-old-number",
        {"horn": {"state": "Activated", "number": 2}},
        ["horn: unknown field number (allowed: state)"],
    ),
    ("lights-missing", {"lights": {}}, ["lights.on: is required"]),
    (
        "lights-old-duration",
        {"lights": {"on": True, "duration": "PT10S"}},
        ["lights: unknown field duration (allowed: on)"],
    ),
    (
        "wake-action",
        {"wakeUp": {"action": "state"}},
        ["wakeUp.action: must be one of WakeUp (got 'state')"],
    ),
    ("wake-extra", {"wakeUp": {"force": True}}, ["wakeUp: unknown field force (allowed: action)"]),
    ("immobilization-missing", {"immobilization": {}}, ["immobilization.activate: is required"]),
    # preconditioning
    ("precond-no-air", {"preconditioning": {}}, ["preconditioning.airConditioning: is required"]),
    (
        "precond-empty-air",
        precond(),
        ["preconditioning.airConditioning: must contain immediate or programs"],
    ),
    (
        "precond-no-programs",
        precond(programs=[]),
        ["preconditioning.airConditioning.programs: must have at least 1 item(s) (got 0)"],
    ),
    (
        "precond-five",
        precond(programs=[program(slot=s) for s in (1, 2, 3, 4, 1)]),
        ["preconditioning.airConditioning.programs: must have at most 4 item(s) (got 5)"],
    ),
    (
        "precond-slot-twice",
        precond(programs=[program(slot=2), program(slot=2)]),
        ["preconditioning.airConditioning.programs[1].slot: slot 2 is used by more than one"],
    ),
    (
        "precond-slot-zero",
        precond(programs=[program(slot=0)]),
        ["programs[0].slot: must be at least 1 (got 0)"],
    ),
    (
        "precond-slot-five",
        precond(programs=[program(slot=5)]),
        ["programs[0].slot: must be at most 4 (got 5)"],
    ),
    (
        "precond-slot-missing",
        precond(programs=[{k: v for k, v in PROGRAM.items() if k != "slot"}]),
        ["programs[0].slot: is required"],
    ),
    (
        "precond-delete-no-slot",
        precond(programs=[{"actionsType": "Delete"}]),
        ["programs[0].slot: is required"],
    ),
    (
        "precond-set-incomplete",
        precond(programs=[{"slot": 1}]),
        ["programs[0]: enabled, start, occurence are required when actionsType is Set"],
    ),
    (
        "precond-set-no-start",
        precond(programs=[{k: v for k, v in PROGRAM.items() if k != "start"}]),
        ["programs[0]: start is required when actionsType is Set"],
    ),
    (
        "precond-actions-type",
        precond(programs=[program(actionsType="Remove")]),
        ["programs[0].actionsType: must be one of Set, Delete (got 'Remove')"],
    ),
    (
        "precond-recurrence",
        precond(programs=[program(recurrence="Weekly")]),
        ["programs[0].recurrence: must be one of None, Daily (got 'Weekly')"],
    ),
    (
        "precond-24h",
        precond(programs=[program(start="PT24H")]),
        ["programs[0].start: must be an ISO-8601 duration from midnight below 24 hours"],
    ),
    (
        "precond-clock-time",
        precond(programs=[program(start="14:30")]),
        ["programs[0].start: must be an ISO-8601 duration", "(got '14:30')"],
    ),
    (
        "precond-empty-duration",
        precond(programs=[program(start="PT")]),
        ["programs[0].start: must be an ISO-8601 duration"],
    ),
    (
        "precond-days",
        precond(programs=[program(start="P1DT1H")]),
        ["programs[0].start: must be an ISO-8601 duration"],
    ),
    (
        "precond-delete-bad-start",
        precond(programs=[{"slot": 1, "actionsType": "Delete", "start": "x"}]),
        ["programs[0].start: must be an ISO-8601 duration"],
    ),
    (
        "precond-no-days",
        precond(programs=[program(occurence={"day": []})]),
        ["programs[0].occurence.day: must have at least 1 item(s)"],
    ),
    (
        "precond-day-twice",
        precond(programs=[program(occurence={"day": ["Mon", "Tue", "Mon"]})]),
        ["programs[0].occurence.day: lists Mon more than once"],
    ),
    (
        "precond-day-name",
        precond(programs=[program(occurence={"day": ["Monday"]})]),
        ["programs[0].occurence.day[0]: must be one of Mon, Tue, Wed, Thu, Fri, Sat, Sun"],
    ),
    (
        "precond-occurence-missing-day",
        precond(programs=[program(occurence={})]),
        ["programs[0].occurence.day: is required"],
    ),
    (
        "precond-extra",
        precond(immediate=True, temperature=21),
        [
            "preconditioning.airConditioning: unknown field temperature "
            "(allowed: immediate, programs)"
        ],
    ),
    (
        "precond-program-extra",
        precond(programs=[program(end="PT15H")]),
        [
            "programs[0]: unknown field end "
            "(allowed: slot, actionsType, enabled, recurrence, start, occurence)"
        ],
    ),
    (
        "precond-several",
        precond(programs=[program(slot=9, enabled="yes", start="PT30H")]),
        [
            "programs[0].slot: must be at most 4",
            "; ",
            "programs[0].enabled: must be true or false",
            "programs[0].start: must be an ISO-8601",
        ],
    ),
    # charging
    (
        "charge-empty",
        charging(),
        ["charging: must contain at least one of immediate, schedule, preferences"],
    ),
    (
        "charge-prefs-immediate",
        charging(immediate=True, preferences={"level": "Level1"}),
        ["charging.preferences: cannot be combined with immediate"],
    ),
    (
        "charge-prefs-schedule",
        charging(
            schedule={"nextDelayedTime": "2024-01-01T22:30:00Z"}, preferences={"type": "Full"}
        ),
        ["charging.preferences: cannot be combined with schedule"],
    ),
    (
        "charge-prefs-deprecated",
        charging(nextDelayedTime="2024-01-01T22:30:00Z", preferences={"type": "Full"}),
        ["charging.preferences: cannot be combined with nextDelayedTime"],
    ),
    (
        "charge-prefs-empty",
        charging(preferences={}),
        ["charging.preferences: must contain level or type"],
    ),
    (
        "charge-level",
        charging(preferences={"level": "Level6"}),
        [
            "charging.preferences.level: must be one of Level1, Level2, Level3, Level4, Level5 "
            "(got 'Level6')"
        ],
    ),
    (
        "charge-type",
        charging(preferences={"type": "Half"}),
        ["charging.preferences.type: must be one of Partial, Full (got 'Half')"],
    ),
    (
        "charge-schedule-empty",
        charging(schedule={}),
        ["charging.schedule: must contain exactly one of nextDelayedTime, programs"],
    ),
    (
        "charge-schedule-both",
        charging(
            schedule={"nextDelayedTime": "2024-01-01T22:30:00Z", "programs": [{"start": "PT1H"}]}
        ),
        ["charging.schedule: must contain exactly one of nextDelayedTime, programs"],
    ),
    (
        "charge-two-delays",
        charging(
            nextDelayedTime="2024-01-01T22:30:00Z",
            schedule={"nextDelayedTime": "2024-01-01T22:30:00Z"},
        ),
        ["charging.nextDelayedTime: is a deprecated duplicate of schedule.nextDelayedTime"],
    ),
    (
        "charge-naive-time",
        charging(schedule={"nextDelayedTime": "2024-01-01T22:30:00"}),
        ["charging.schedule.nextDelayedTime: must be an RFC 3339 timestamp with a time zone"],
    ),
    (
        "charge-date-only",
        charging(nextDelayedTime="2024-01-01"),
        ["charging.nextDelayedTime: must be an RFC 3339 timestamp"],
    ),
    (
        "charge-impossible-date",
        charging(schedule={"nextDelayedTime": "2024-02-30T10:00:00Z"}),
        [
            "charging.schedule.nextDelayedTime: must be an RFC 3339 timestamp",
            "'2024-02-30T10:00:00Z'",
        ],
    ),
    (
        "charge-duration-as-time",
        charging(schedule={"nextDelayedTime": "PT8H"}),
        ["charging.schedule.nextDelayedTime: must be an RFC 3339 timestamp"],
    ),
    (
        "charge-no-programs",
        charging(schedule={"programs": []}),
        ["charging.schedule.programs: must have at least 1 item(s)"],
    ),
    (
        "charge-five-programs",
        charging(schedule={"programs": [{"start": "PT1H"}] * 5}),
        ["charging.schedule.programs: must have at most 4 item(s) (got 5)"],
    ),
    (
        "charge-slot-twice",
        charging(
            schedule={"programs": [{"slot": 3, "start": "PT1H"}, {"slot": 3, "start": "PT2H"}]}
        ),
        ["charging.schedule.programs[1].slot: slot 3 is used by more than one program"],
    ),
    (
        "charge-slot-range",
        charging(schedule={"programs": [{"slot": 0, "start": "PT1H"}]}),
        ["charging.schedule.programs[0].slot: must be at least 1"],
    ),
    (
        "charge-no-start",
        charging(schedule={"programs": [{"slot": 1, "end": "PT6H"}]}),
        ["charging.schedule.programs[0].start: is required"],
    ),
    (
        "charge-bad-end",
        charging(schedule={"programs": [{"start": "PT22H", "end": "6am"}]}),
        ["charging.schedule.programs[0].end: must be an ISO-8601 duration", "(got '6am')"],
    ),
    (
        "charge-program-extra",
        charging(schedule={"programs": [{"start": "PT22H", "recurrence": "Daily"}]}),
        [
            "charging.schedule.programs[0]: unknown field recurrence "
            "(allowed: slot, enabled, start, end, occurence, chargeUntilFull)"
        ],
    ),
    (
        "charge-extra",
        charging(immediate=True, power=7),
        [
            "charging: unknown field power (allowed: immediate, schedule, nextDelayedTime, "
            "preferences)"
        ],
    ),
    # navigation
    ("nav-missing", {"navigation": {}}, ["navigation.positions: is required"]),
    (
        "nav-empty",
        {"navigation": {"positions": []}},
        ["navigation.positions: must have at least 1 item(s) (got 0)"],
    ),
    (
        "nav-eleven",
        {"navigation": {"positions": [point(1, 1)] * 11}},
        ["navigation.positions: must have at most 10 item(s) (got 11)"],
    ),
    (
        "nav-type",
        {"navigation": {"positions": [{"type": "LineString", "coordinates": [1, 2]}]}},
        ["navigation.positions[0].type: must be one of Point (got 'LineString')"],
    ),
    (
        "nav-no-type",
        {"navigation": {"positions": [{"coordinates": [1, 2]}]}},
        ["navigation.positions[0].type: is required"],
    ),
    (
        "nav-one-coordinate",
        {"navigation": {"positions": [point(1, 2), {"type": "Point", "coordinates": [1]}]}},
        ["navigation.positions[1].coordinates: must hold 2 or 3 numbers"],
    ),
    (
        "nav-four-coordinates",
        {"navigation": {"positions": [point(1, 2, 3, 4)]}},
        ["navigation.positions[0].coordinates: must hold 2 or 3 numbers", "(got 4)"],
    ),
    (
        "nav-latitude",
        {"navigation": {"positions": [point(2.35, 120)]}},
        ["navigation.positions[0].coordinates[1]: latitude must be within [-90, 90] (got 120"],
    ),
    (
        "nav-lat-lon-swapped",
        {"navigation": {"positions": [point(48.85, 2.35), point(-62.5, 175.9)]}},
        ["navigation.positions[1].coordinates[1]: latitude must be within [-90, 90]"],
    ),
    (
        "nav-longitude",
        {"navigation": {"positions": [point(-180.5, 0)]}},
        ["navigation.positions[0].coordinates[0]: longitude must be within [-180, 180]"],
    ),
    (
        "nav-nan",
        {"navigation": {"positions": [point(float("nan"), 0)]}},
        ["navigation.positions[0].coordinates[0]: longitude must be within [-180, 180] (got nan)"],
    ),
    (
        "nav-infinite-altitude",
        {"navigation": {"positions": [point(1, 2, float("inf"))]}},
        ["navigation.positions[0].coordinates[2]: altitude must be a finite number (got inf)"],
    ),
    (
        "nav-string-number",
        {"navigation": {"positions": [point("2.35", 48)]}},  # type: ignore[arg-type]
        ["navigation.positions[0].coordinates[0]: must be a number (got '2.35')"],
    ),
    (
        "nav-bool-number",
        {"navigation": {"positions": [point(True, 48)]}},
        ["navigation.positions[0].coordinates[0]: must be a number (got true)"],
    ),
    (
        "nav-bbox",
        {"navigation": {"positions": [{**point(1, 2), "bbox": [1, 2, 1, 2]}]}},
        ["navigation.positions[0]: unknown field bbox (allowed: type, coordinates)"],
    ),
    (
        "nav-approval",
        {"navigation": {"positions": [point(1, 2)], "driverApproval": "no"}},
        ["navigation.driverApproval: must be true or false (got 'no')"],
    ),
    # stolen
    (
        "stolen-empty",
        stolen(),
        ["stolen: must contain exactly one of stolen, trackingPeriod, immobilization"],
    ),
    (
        "stolen-two",
        stolen(stolen=True, trackingPeriod={"running": 30}),
        [
            "stolen: must contain exactly one of stolen, trackingPeriod, immobilization "
            "(found stolen, trackingPeriod)"
        ],
    ),
    (
        "tracking-empty",
        stolen(trackingPeriod={}),
        ["stolen.trackingPeriod: must contain running or shutdown"],
    ),
    (
        "tracking-running-low",
        stolen(trackingPeriod={"running": 4, "shutdown": 60}),
        ["stolen.trackingPeriod.running: must be at least 5 (got 4)"],
    ),
    (
        "tracking-shutdown-low",
        stolen(trackingPeriod={"running": 5, "shutdown": 59}),
        ["stolen.trackingPeriod.shutdown: must be at least 60 (got 59)"],
    ),
    (
        "tracking-float",
        stolen(trackingPeriod={"running": 30.5}),
        ["stolen.trackingPeriod.running: must be an integer (got 30.5)"],
    ),
    (
        "stolen-immobilization-empty",
        stolen(immobilization={}),
        ["stolen.immobilization.activate: is required"],
    ),
    (
        "stolen-extra",
        stolen(stolen=True, reason="theft"),
        ["stolen: unknown field reason (allowed: stolen, trackingPeriod, immobilization)"],
    ),
]


@pytest.mark.parametrize(
    ("data", "fragments"), [v[1:] for v in INVALID], ids=[v[0] for v in INVALID]
)
def test_invalid_bodies_are_refused_with_the_path_and_the_reason(
    data: object, fragments: list[str]
) -> None:
    error = refusal(data)
    assert error.error is ErrorCode.INVALID_BODY
    assert error.status == 400
    for fragment in fragments:
        assert fragment in error.message


def test_envelope_problems_are_reported_together() -> None:
    error = refusal({"label": 1, "attributes": [], "x": 1})
    parts = error.message.split("; ")
    assert len(parts) == 4
    assert parts[0].startswith("attributes:")
    assert parts[1].startswith("unknown member x")
    assert parts[2].startswith("label:")
    assert parts[3].startswith("the body must contain exactly one action")


STRICT: list[tuple[str, dict[str, Any], str]] = [
    ("bool-as-string", {"lights": {"on": "true"}}, "lights.on: must be true or false (got 'true')"),
    ("bool-as-int", {"lights": {"on": 1}}, "lights.on: must be true or false (got 1)"),
    ("bool-as-zero", {"immobilization": {"activate": 0}}, "immobilization.activate: must be true"),
    ("forced-as-string", {"door": {"state": "Locked", "forced": "false"}}, "door.forced: must be"),
    ("immediate-as-string", {"charging": {"immediate": "false"}}, "charging.immediate: must be"),
    ("stolen-as-string", {"stolen": {"stolen": "yes"}}, "stolen.stolen: must be true or false"),
    (
        "slot-as-string",
        precond(programs=[program(slot="1")]),
        "programs[0].slot: must be an integer (got '1')",
    ),
    (
        "slot-as-float",
        precond(programs=[program(slot=1.0)]),
        "programs[0].slot: must be an integer (got 1.0)",
    ),
    (
        "slot-as-bool",
        precond(programs=[program(slot=True)]),
        "programs[0].slot: must be an integer (got true)",
    ),
    (
        "running-as-string",
        stolen(trackingPeriod={"running": "30"}),
        "stolen.trackingPeriod.running: must be an integer (got '30')",
    ),
    (
        "enum-as-number",
        {"door": {"state": 1}},
        "door.state: must be one of Unlocked, Locked (got 1)",
    ),
    (
        "start-as-number",
        precond(programs=[program(start=52200)]),
        "programs[0].start: must be a string (got 52200)",
    ),
    (
        "days-as-string",
        precond(programs=[program(occurence={"day": "Mon"})]),
        "programs[0].occurence.day: must be a list (got 'Mon')",
    ),
    (
        "coordinates-as-string",
        {"navigation": {"positions": [{"type": "Point", "coordinates": "1,2"}]}},
        "navigation.positions[0].coordinates: must be a list (got '1,2')",
    ),
    (
        "snake-case-name",
        precond(programs=[{**PROGRAM, "actions_type": "Set"}]),
        "programs[0]: unknown field actions_type",
    ),
]


@pytest.mark.parametrize(("data", "fragment"), [v[1:] for v in STRICT], ids=[v[0] for v in STRICT])
def test_no_value_is_coerced(data: dict[str, Any], fragment: str) -> None:
    error = refusal(data)
    assert error.error is ErrorCode.INVALID_BODY
    assert fragment in error.message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "state",
                    "on",
                    "slot",
                    "start",
                    "programs",
                    "positions",
                    "type",
                    "coordinates",
                    "immediate",
                    "schedule",
                    "stolen",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(action=st.sampled_from([*ACTION_TYPES, "label", "ligths"]), value=JSON)
def test_arbitrary_input_yields_a_body_or_a_keyfob_error(action: str, value: object) -> None:
    outcome: RemoteBody | KeyfobError
    try:
        outcome = parse_remote_body({action: value})
    except KeyfobError as error:
        outcome = error
    if isinstance(outcome, KeyfobError):
        assert outcome.error in {ErrorCode.INVALID_BODY, ErrorCode.LEGACY_FIELD}
        assert outcome.message
    else:
        assert remote_errors(outcome.to_stored()) == []


def test_oracle_still_validates_the_lights_member() -> None:
    """Guard for ``remote_errors``: the corrected oracle must still reject a bad lights body."""
    assert remote_errors({"lights": {}}) != []
    assert remote_errors({"lights": {"on": "yes"}}) != []
    assert errors("b2b-api", "Remote", {"door": {"state": "Locked"}}) == []
