"""Accepting remotes of the user face: the fleet face's queue and transaction, its own checks.

A request is judged in this order, each refusal answering as if the request had been alone:

    vehicle linked to the user ─► callback of this (client_id, user) ─► body (no immobilization
    or stolen) ─► the token's scope for the action ─► Idempotency-Key replay ─► callback
    Running and of type Remote ─► vehicle capabilities ─► stored

The scope comes before the replay so that a token lacking it never gets a 202, not even the
first answer to a key (decision 11: 403, and nothing stored). A vehicle or callback of someone
else is a 404 exactly like an unknown id (§2.4). Idempotency keys are scoped to the
(client_id, user) pair that sent them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_

from keyfob.auth.scopes import scope_for
from keyfob.auth.user_models import user_vehicles
from keyfob.callbacks.models import Face, callbacks
from keyfob.callbacks.service import check_callback_id
from keyfob.callbacks.user_service import (
    Owner,
    UserCallback,
    callback_not_found,
    user_callback_from_row,
)
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.eligibility import ensure_vehicle_can
from keyfob.remotes.models import remotes, user_idempotency_keys
from keyfob.remotes.staging import (
    ANY_TIME,
    Batch,
    Known,
    Posted,
    TimeWindow,
    UserOwner,
    replay,
    request_hash,
    stage,
)
from keyfob.remotes.user_schemas import UserRemoteBody, parse_user_remote_body
from keyfob.store.queries import one_of
from keyfob.store.units import Fetch, Plan
from keyfob.vehicles.models import vehicles
from keyfob.vehicles.service import Vehicle, vehicle_from_row
from keyfob.vehicles.user_vehicles import user_vehicle_not_found
from keyfob.vocabulary import CallbackStatus


@dataclass(frozen=True)
class UserAcceptRequest:
    """A POST remote on ``/connectedcar/v4``: who sends it, with which scopes, and what."""

    client_id: str
    user_id: str
    scopes: frozenset[str]
    vehicle_id: str
    callback_id: str
    data: object
    idempotency_key: str | None = None
    window: TimeWindow = ANY_TIME
    budget: bool = False
    """Answer with the vehicle's wake-up budgets (``Keyfob-Budget``, ``accept_budget``)."""

    @property
    def owner(self) -> Owner:
        return Owner(self.client_id, self.user_id)


@dataclass
class UserLookups:
    vehicles: dict[str, Vehicle]
    links: set[tuple[str, str]]
    callbacks: dict[str, UserCallback]
    keys: dict[tuple[str, ...], Any]


NONE = UserLookups({}, set(), {}, {})
"""What a batch without user-face requests looks up."""

_VEHICLES = select(vehicles).where(one_of(vehicles.c.id, "ids"))
_LINKS = select(user_vehicles.c.user_id, user_vehicles.c.vehicle_id).where(
    one_of(user_vehicles.c.user_id, "users"),
    one_of(user_vehicles.c.vehicle_id, "ids"),
)
_CALLBACKS = select(callbacks).where(
    one_of(callbacks.c.id, "ids"),
    callbacks.c.face == Face.USER.value,
    callbacks.c.deleted_at.is_(None),
)


def lookups(batch: list[UserAcceptRequest], known: Known) -> Plan[UserLookups]:
    """Everything the batch's requests are judged against, in a handful of statements.

    Vehicles come from ``known`` when seen before (they are never deleted); links are read
    every time, since a vehicle can be unlinked from its user.
    """
    found = {
        r.vehicle_id: known.vehicles[r.vehicle_id] for r in batch if r.vehicle_id in known.vehicles
    }
    unknown = {r.vehicle_id for r in batch} - found.keys()
    if unknown:
        rows = yield Fetch(_VEHICLES, {"ids": sorted(unknown)})
        found.update({v.id: vehicle_from_row(v) for v in rows})
        known.remember({}, found)
    links = yield Fetch(
        _LINKS,
        {"users": sorted({r.user_id for r in batch}), "ids": sorted({r.vehicle_id for r in batch})},
    )
    callback_rows = yield Fetch(_CALLBACKS, {"ids": sorted({r.callback_id for r in batch})})
    triples = {
        (r.client_id, r.user_id, r.idempotency_key) for r in batch if r.idempotency_key is not None
    }
    keys: dict[tuple[str, ...], Any] = {}
    if triples:
        key_rows = yield Fetch(
            select(user_idempotency_keys, remotes.c.type)
            .join(remotes, remotes.c.id == user_idempotency_keys.c.remote_id)
            .where(
                tuple_(
                    user_idempotency_keys.c.client_id,
                    user_idempotency_keys.c.user_id,
                    user_idempotency_keys.c.key,
                ).in_(triples)
            )
        )
        keys = {(k.client_id, k.user_id, k.key): k for k in key_rows}
    return UserLookups(
        vehicles=found,
        links={(link.user_id, link.vehicle_id) for link in links},
        callbacks={c.id: user_callback_from_row(c) for c in callback_rows},
        keys=keys,
    )


def _check_callback(callback: UserCallback, parsed: UserRemoteBody) -> None:
    if callback.status is not CallbackStatus.RUNNING:
        raise KeyfobError(
            ErrorCode.CALLBACK_NOT_RUNNING,
            f"callback {callback.id} is {callback.status.value}; "
            "PUT its status to Running before posting remotes through it",
        )
    if not callback.carries_remotes:
        raise KeyfobError(
            ErrorCode.REMOTE_TYPE_NOT_IN_CALLBACK,
            f"callback {callback.id} has type {', '.join(t.value for t in callback.types)}; "
            f"a {parsed.body.type.value} remote needs a callback whose type includes Remote",
        )


def _check_scope(request: UserAcceptRequest, parsed: UserRemoteBody) -> None:
    needed = scope_for(parsed.body.type)
    if needed is None or needed not in request.scopes:
        raise KeyfobError(
            ErrorCode.MISSING_SCOPE,
            f"a {parsed.body.type.value} remote needs the scope {needed}, "
            "which this access token was not granted",
        )


def judge(request: UserAcceptRequest, found: UserLookups, batch: Batch) -> Posted:
    vehicle = found.vehicles.get(request.vehicle_id)
    if vehicle is None or (request.user_id, request.vehicle_id) not in found.links:
        raise user_vehicle_not_found(request.vehicle_id)
    check_callback_id(request.callback_id)
    callback = found.callbacks.get(request.callback_id)
    if callback is None or callback.owner != request.owner:
        raise callback_not_found(request.callback_id)
    parsed = parse_user_remote_body(request.data)
    _check_scope(request, parsed)
    digest = ""
    scoped: tuple[str, ...] = ()
    if request.idempotency_key is not None:
        digest = request_hash(
            {"v": request.vehicle_id, "c": request.callback_id, "b": request.data}
        )
        scoped = (request.client_id, request.user_id, request.idempotency_key)
        replayed, expired = replay(batch, scoped, found.keys.get(scoped), digest)
        triple = (request.client_id, request.user_id, request.idempotency_key)
        if expired and triple not in batch.expired_user_keys:
            batch.expired_user_keys.append(triple)
        if replayed is not None:
            return replayed
    _check_callback(callback, parsed)
    ensure_vehicle_can(vehicle.capabilities, parsed.body, motorization=vehicle.motorization)
    posted = Posted(batch.remote_id(), parsed.body.type.value, replayed=False)
    owner = UserOwner(request.client_id, request.user_id, parsed.own)
    stage(
        batch,
        remote_id=posted.remote_id,
        vehicle=vehicle,
        callback_id=callback.id,
        body=parsed.body,
        user=owner,
        window=request.window,
    )
    if request.idempotency_key is not None:
        batch.fresh_keys[scoped] = (digest, posted)
        batch.user_keys.append(
            {
                "client_id": request.client_id,
                "user_id": request.user_id,
                "key": request.idempotency_key,
                "request_hash": digest,
                "remote_id": posted.remote_id,
                "created_at": batch.now,
            }
        )
    return posted
