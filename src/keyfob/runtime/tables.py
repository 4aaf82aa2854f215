"""Imports every table so ``db.metadata`` is complete (for migrations and test set-up)."""

from keyfob.auth.models import partners
from keyfob.auth.user_models import (
    authorization_codes,
    oauth_clients,
    oauth_grants,
    refresh_tokens,
    signing_keys,
    token_revocations,
    user_vehicles,
    users,
)
from keyfob.callbacks.models import callbacks
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.remotes.control.campaign_models import campaign_targets, campaigns
from keyfob.remotes.models import idempotency_keys, remote_events, remotes, user_idempotency_keys
from keyfob.store.schema import metadata
from keyfob.vehicles.models import fleets, vehicle_states, vehicles, wake_ups

__all__ = [
    "authorization_codes",
    "callbacks",
    "campaign_targets",
    "campaigns",
    "delivery_attempts",
    "fleets",
    "idempotency_keys",
    "metadata",
    "notifications",
    "oauth_clients",
    "oauth_grants",
    "partners",
    "refresh_tokens",
    "remote_events",
    "remotes",
    "signing_keys",
    "token_revocations",
    "user_idempotency_keys",
    "user_vehicles",
    "users",
    "vehicle_states",
    "vehicles",
    "wake_ups",
]
