"""Accepting remotes of the fleet face: its bulk look-ups and its order of checks.

A request is judged in this order, each refusal answering as if the request had been alone:

    fleet ─► vehicle ─► callback ─► Idempotency-Key replay ─► body ─► callback Running and
    remoteTypes ─► vehicle capabilities ─► stored

``remotes.accept`` queues, batches and commits requests of both faces; ``remotes.accept_user``
is the user face's counterpart of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_

from keyfob.callbacks.models import callbacks
from keyfob.callbacks.service import (
    Callback,
    callback_from_row,
    callback_not_found,
    check_callback_id,
)
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.eligibility import ensure_vehicle_can
from keyfob.remotes.models import idempotency_keys, remotes
from keyfob.remotes.schemas import RemoteBody, parse_remote_body
from keyfob.remotes.staging import (
    ANY_TIME,
    Batch,
    Known,
    Posted,
    TimeWindow,
    replay,
    request_hash,
    stage,
)
from keyfob.store.queries import one_of
from keyfob.store.units import Fetch, Plan
from keyfob.vehicles.models import fleets, vehicles
from keyfob.vehicles.service import (
    Vehicle,
    fleet_not_found,
    vehicle_from_row,
    vehicle_not_found,
)
from keyfob.vocabulary import CallbackStatus


@dataclass(frozen=True)
class AcceptRequest:
    partner_id: str
    fleet_id: str
    vehicle_id: str
    callback_id: str
    data: object
    idempotency_key: str | None = None
    window: TimeWindow = ANY_TIME
    budget: bool = False
    """Answer with the vehicle's wake-up budgets (``Keyfob-Budget``, ``accept_budget``)."""


def check_callback(callback: Callback, body: RemoteBody) -> None:
    if callback.status is not CallbackStatus.RUNNING:
        raise KeyfobError(
            ErrorCode.CALLBACK_NOT_RUNNING,
            f"callback {callback.id} is {callback.status.value}; "
            "PUT its status to Running before posting remotes through it",
        )
    if body.type.value not in callback.remote_types:
        raise KeyfobError(
            ErrorCode.REMOTE_TYPE_NOT_IN_CALLBACK,
            f"remote type {body.type.value} is not in this callback's remoteTypes "
            f"({', '.join(callback.remote_types)})",
        )


@dataclass
class Lookups:
    fleet_owner: dict[str, str]
    vehicles: dict[str, Vehicle]
    callbacks: dict[str, Callback]
    keys: dict[tuple[str, str], Any]


FLEET_OWNERS = select(fleets.c.id, fleets.c.partner_id).where(one_of(fleets.c.id, "ids"))
VEHICLES = select(vehicles).where(one_of(vehicles.c.id, "ids"))
CALLBACKS = select(callbacks).where(
    one_of(callbacks.c.id, "ids"),
    callbacks.c.deleted_at.is_(None),
    callbacks.c.fleet_id.is_not(None),
)


def lookups(batch: list[AcceptRequest], known: Known) -> Plan[Lookups]:
    owners = {
        r.fleet_id: known.fleet_owner[r.fleet_id] for r in batch if r.fleet_id in known.fleet_owner
    }
    found = {
        r.vehicle_id: known.vehicles[r.vehicle_id] for r in batch if r.vehicle_id in known.vehicles
    }
    unknown_fleets = {r.fleet_id for r in batch} - owners.keys()
    unknown_vehicles = {r.vehicle_id for r in batch} - found.keys()
    if unknown_fleets:
        fleet_rows = yield Fetch(FLEET_OWNERS, {"ids": sorted(unknown_fleets)})
        owners.update({f.id: f.partner_id for f in fleet_rows})
    if unknown_vehicles:
        vehicle_rows = yield Fetch(VEHICLES, {"ids": sorted(unknown_vehicles)})
        found.update({v.id: vehicle_from_row(v) for v in vehicle_rows})
    known.remember(owners, found)
    callback_rows = yield Fetch(CALLBACKS, {"ids": sorted({r.callback_id for r in batch})})
    pairs = {(r.partner_id, r.idempotency_key) for r in batch if r.idempotency_key is not None}
    keys: dict[tuple[str, str], Any] = {}
    if pairs:
        key_rows = yield Fetch(
            select(idempotency_keys, remotes.c.type)
            .join(remotes, remotes.c.id == idempotency_keys.c.remote_id)
            .where(tuple_(idempotency_keys.c.partner_id, idempotency_keys.c.key).in_(pairs)),
        )
        keys = {(k.partner_id, k.key): k for k in key_rows}
    return Lookups(
        fleet_owner=owners,
        vehicles=found,
        callbacks={c.id: callback_from_row(c) for c in callback_rows},
        keys=keys,
    )


def judge(request: AcceptRequest, found: Lookups, batch: Batch) -> Posted:
    if found.fleet_owner.get(request.fleet_id) != request.partner_id:
        raise fleet_not_found(request.fleet_id)
    vehicle = found.vehicles.get(request.vehicle_id)
    if vehicle is None or vehicle.fleet_id != request.fleet_id:
        raise vehicle_not_found(request.vehicle_id)
    check_callback_id(request.callback_id)
    callback = found.callbacks.get(request.callback_id)
    if callback is None or callback.fleet_id != request.fleet_id:
        raise callback_not_found(request.callback_id)
    digest = ""
    if request.idempotency_key is not None:
        digest = request_hash(
            {"v": request.vehicle_id, "c": request.callback_id, "b": request.data}
        )
        pair = (request.partner_id, request.idempotency_key)
        replayed, expired = replay(batch, pair, found.keys.get(pair), digest)
        if expired and pair not in batch.expired_keys:
            batch.expired_keys.append(pair)
        if replayed is not None:
            return replayed
    body = parse_remote_body(request.data)
    check_callback(callback, body)
    ensure_vehicle_can(vehicle.capabilities, body, motorization=vehicle.motorization)
    posted = Posted(batch.remote_id(), body.type.value, replayed=False)
    stage(
        batch,
        remote_id=posted.remote_id,
        vehicle=vehicle,
        callback_id=callback.id,
        body=body,
        window=request.window,
    )
    if request.idempotency_key is not None:
        pair = (request.partner_id, request.idempotency_key)
        batch.fresh_keys[pair] = (digest, posted)
        batch.keys.append(
            {
                "partner_id": request.partner_id,
                "key": request.idempotency_key,
                "request_hash": digest,
                "remote_id": posted.remote_id,
                "created_at": batch.now,
            }
        )
    return posted


NONE = Lookups({}, {}, {}, {})
"""The look-ups of a batch without fleet-face requests."""
