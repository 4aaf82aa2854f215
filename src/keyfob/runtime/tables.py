"""Imports every table so ``db.metadata`` is complete (for migrations and test set-up)."""

from keyfob.auth.models import partners
from keyfob.callbacks.models import callbacks
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.remotes.models import idempotency_keys, remote_events, remotes
from keyfob.store.schema import metadata
from keyfob.vehicles.models import fleets, vehicle_states, vehicles, wake_ups

__all__ = [
    "callbacks",
    "delivery_attempts",
    "fleets",
    "idempotency_keys",
    "metadata",
    "notifications",
    "partners",
    "remote_events",
    "remotes",
    "vehicle_states",
    "vehicles",
    "wake_ups",
]
