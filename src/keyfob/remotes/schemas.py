"""The fleet (B2B) ``Remote`` body: one action per request, validated before anything is stored.

``parse_remote_body`` is the only door. It checks the envelope itself (exactly one action
member, ``label``, legacy and end-user-only members) and hands the action to its model in
``remotes.bodies``; every refusal is a ``KeyfobError`` whose message names the JSON path.

    data ── not an object ─────────────────────────► INVALID_BODY
      │── legacy member (preonditionning, ligths, state) ► LEGACY_FIELD (names the new one)
      │── attributes / callbackAttributes, unknown, label, action count ► INVALID_BODY
      │── null anywhere ───────────────────────────► INVALID_BODY
      └── action model ── invalid ─────────────────► INVALID_BODY
                        └─ valid ──► RemoteBody(type, action, label, payload)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.bodies.base import show
from keyfob.remotes.bodies.charging import ChargingAction
from keyfob.remotes.bodies.climate import PreconditioningAction
from keyfob.remotes.bodies.navigation import NavigationAction
from keyfob.remotes.bodies.problems import describe, null_paths
from keyfob.remotes.bodies.simple import (
    DoorAction,
    HornAction,
    ImmobilizationAction,
    LightsAction,
    StolenAction,
    WakeUpAction,
)
from keyfob.vocabulary import RemoteType

ActionPayload = (
    PreconditioningAction
    | ChargingAction
    | DoorAction
    | HornAction
    | LightsAction
    | WakeUpAction
    | NavigationAction
    | ImmobilizationAction
    | StolenAction
)

ACTIONS: dict[str, tuple[RemoteType, type[ActionPayload]]] = {
    "preconditioning": (RemoteType.THERMAL_PRECONDITIONING, PreconditioningAction),
    "charging": (RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST, ChargingAction),
    "door": (RemoteType.DOORS, DoorAction),
    "horn": (RemoteType.HORN, HornAction),
    "lights": (RemoteType.LIGHTS, LightsAction),
    "wakeUp": (RemoteType.WAKE_UP, WakeUpAction),
    "navigation": (RemoteType.NAVIGATION, NavigationAction),
    "immobilization": (RemoteType.IMMOBILIZATION, ImmobilizationAction),
    "stolen": (RemoteType.STOLEN, StolenAction),
}
"""Body member → (RemoteType, model): decision 10."""

ACTION_TYPES: dict[str, RemoteType] = {name: entry[0] for name, entry in ACTIONS.items()}

LEGACY_MEMBERS: dict[str, str] = {
    "preonditionning": "this member was renamed, use preconditioning",
    "ligths": "this member was renamed, use lights",
    "state": 'the State remote was replaced, use wakeUp, e.g. {"wakeUp": {"action": "WakeUp"}}',
}
"""Names of the 2020 contract that old clients may still send (decision 25)."""

END_USER_MEMBERS = ("attributes", "callbackAttributes")


@dataclass(frozen=True)
class RemoteBody:
    """A valid remote request: its action member, the typed payload and the optional label."""

    action: str
    payload: ActionPayload
    label: str | None = None

    @property
    def type(self) -> RemoteType:
        return ACTION_TYPES[self.action]

    def to_stored(self) -> dict[str, Any]:
        """The normalized body stored and echoed as ``remote`` in GET (official ``Remote``)."""
        stored: dict[str, Any] = {}
        if self.label is not None:
            stored["label"] = self.label
        stored[self.action] = self.payload.to_stored()
        return stored


def parse_remote_body(data: object) -> RemoteBody:
    """Validate a decoded JSON body; raise ``KeyfobError`` naming every problem found."""
    if not isinstance(data, dict):
        raise KeyfobError(
            ErrorCode.INVALID_BODY, f"the body must be a JSON object (got {show(data)})"
        )
    legacy = [f"{name}: {hint}" for name, hint in LEGACY_MEMBERS.items() if name in data]
    if legacy:
        raise KeyfobError(ErrorCode.LEGACY_FIELD, "; ".join(legacy))
    problems = _envelope_problems(data)
    problems += [f"{path}: must not be null" for path in null_paths(data)]
    if problems:
        raise KeyfobError(ErrorCode.INVALID_BODY, "; ".join(problems))
    (action,) = [name for name in ACTIONS if name in data]
    model = ACTIONS[action][1]
    try:
        payload = model.model_validate(data[action])
    except ValidationError as exc:
        raise KeyfobError(ErrorCode.INVALID_BODY, describe(exc, prefix=(action,))) from None
    return RemoteBody(action=action, payload=payload, label=data.get("label"))


def _envelope_problems(data: dict[Any, Any]) -> list[str]:
    problems: list[str] = [
        f"{name}: only the end-user (v4) API accepts per-remote {name} (on the fleet API, "
        "put attributes on the callback)"
        for name in END_USER_MEMBERS
        if name in data
    ]
    allowed = ("label", *ACTIONS)
    unknown = [str(key) for key in data if key not in allowed and key not in END_USER_MEMBERS]
    if unknown:
        problems.append(
            f"unknown member{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(allowed: {', '.join(allowed)})"
        )
    label = data.get("label")
    if label is not None and not isinstance(label, str):
        problems.append(f"label: must be a string (got {show(label)})")
    found = [name for name in ACTIONS if name in data]
    if not found:
        problems.append(f"the body must contain exactly one action among {', '.join(ACTIONS)}")
    elif len(found) > 1:
        problems.append(
            f"the body must contain exactly one action (found {', '.join(found)}), "
            "send one remote per action"
        )
    return problems
