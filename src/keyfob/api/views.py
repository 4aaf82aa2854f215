"""The contract's response shapes, built from service records (HAL links included)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from keyfob.callbacks.service import Callback
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import isoformat
from keyfob.kit.hal import link
from keyfob.remotes.rows import Remote
from keyfob.remotes.service import Event
from keyfob.vehicles.service import Fleet, Vehicle


def fleet_href(base: str, fleet_id: str) -> str:
    return f"{base}/fleets/{fleet_id}"


def callback_href(base: str, fleet_id: str, callback_id: str) -> str:
    return f"{base}/fleets/{fleet_id}/remote/callbacks/{callback_id}"


def remotes_href(base: str, fleet_id: str, vehicle_id: str, callback_id: str) -> str:
    return f"{base}/fleets/{fleet_id}/vehicles/{vehicle_id}/callbacks/{callback_id}/remotes"


def callback_ref(base: str, callback: Callback, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_links": {
            "fleet": link(fleet_href(base, callback.fleet_id)),
            "callback": link(callback_href(base, callback.fleet_id, callback.id)),
        },
        "callbackId": callback.id,
        "status": callback.status.value,
    }
    if secret is not None:
        body["secret"] = secret  # extension: the signing secret, shown only at creation
    return body


def remote_callback(base: str, callback: Callback) -> dict[str, Any]:
    return {
        "_links": {
            "self": link(callback_href(base, callback.fleet_id, callback.id)),
            "fleet": link(fleet_href(base, callback.fleet_id)),
            "remotes": link(
                remotes_href(base, callback.fleet_id, "{vid}", callback.id), templated=True
            ),
        },
        "id": callback.id,
        "subscribe": callback.subscribe,
        "status": callback.status.value,
    }


def remote_post_response(
    base: str, *, fleet_id: str, vehicle_id: str, callback_id: str, remote_id: str, type_: str
) -> dict[str, Any]:
    return {
        "_links": {
            "fleet": link(fleet_href(base, fleet_id)),
            "callback": link(callback_href(base, fleet_id, callback_id)),
            "remote": link(f"{remotes_href(base, fleet_id, vehicle_id, callback_id)}/{remote_id}"),
        },
        "remoteActionId": remote_id,
        "type": type_,
    }


def event_view(event: Event) -> dict[str, Any]:
    view: dict[str, Any] = {
        "eventId": event.id,
        "sequence": event.seq,
        "eventDate": isoformat(event.created_at),
        "type": event.type,
        "status": event.status,
    }
    if event.failure_cause:
        view["failureCause"] = event.failure_cause
    if event.feedback_detail:
        view["feedbackDetail"] = event.feedback_detail
    return view


def remote_action_fields(remote: Remote, events: list[Event] | None = None) -> dict[str, Any]:
    """A ``RemoteAction`` without its ``_links``: the same on both faces."""
    body: dict[str, Any] = {
        "remoteActionId": remote.id,
        "type": remote.type,
        "remote": remote.body,
        "status": remote.status,
    }
    if remote.failure_cause:
        body["failureCause"] = remote.failure_cause
    if remote.feedback_detail:
        body["feedbackDetail"] = remote.feedback_detail
    if events is not None:
        body["events"] = [event_view(e) for e in events]  # extension: the ordered history
    return body


def remote_action(base: str, remote: Remote, events: list[Event] | None = None) -> dict[str, Any]:
    fleet_id = remote.fleet_id
    if fleet_id is None:
        raise KeyfobError(ErrorCode.INTERNAL, f"remote {remote.id} has no fleet")
    href = remotes_href(base, fleet_id, remote.vehicle_id, remote.callback_id)
    links = {
        "self": link(f"{href}/{remote.id}"),
        "fleet": link(fleet_href(base, fleet_id)),
        "callback": link(callback_href(base, fleet_id, remote.callback_id)),
    }
    return {"_links": links, **remote_action_fields(remote, events)}


def fleet_view(base: str, fleet: Fleet) -> dict[str, Any]:
    href = fleet_href(base, fleet.id)
    return {
        "_links": {
            "self": link(href),
            "vehicles": link(f"{href}/vehicles"),
            "callbacks": link(f"{href}/remote/callbacks"),
        },
        "id": fleet.id,
        "name": fleet.name,
        "createdAt": isoformat(fleet.created_at),
        "updatedAt": isoformat(fleet.updated_at),
    }


def vehicle_view(
    base: str, vehicle: Vehicle, *, extensions: Collection[str] = ()
) -> dict[str, Any]:
    href = f"{fleet_href(base, vehicle.fleet_id)}/vehicles/{vehicle.id}"
    body: dict[str, Any] = {
        "_links": {
            "self": link(href),
            "fleet": link(fleet_href(base, vehicle.fleet_id)),
            "status": link(f"{href}/status"),
            "remotes": link(f"{href}/callbacks/{{cbid}}/remotes", templated=True),
        },
        "id": vehicle.id,
        "vin": vehicle.vin,
        "motorization": vehicle.motorization,
        "createdAt": isoformat(vehicle.created_at),
        "updatedAt": isoformat(vehicle.updated_at),
    }
    if "onboardCapabilities" in extensions:
        body["_embedded"] = {"extension": {"onboardCapabilities": vehicle.capabilities}}
    return body


def vehicle_capabilities(vehicle: Vehicle, extensions: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vin": vehicle.vin,
        "motorization": vehicle.motorization,
        "createdAt": isoformat(vehicle.created_at),
    }
    if "onboardCapabilities" in extensions:
        body["_embedded"] = {"extension": {"onboardCapabilities": vehicle.capabilities}}
    return body
