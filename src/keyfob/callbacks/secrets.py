"""Signing secrets of a callback: returned once at creation, rotatable with a grace period.

During a rotation both secrets sign every notification (Standard Webhooks allows several
signatures), so a receiver can switch at its own pace.
"""

from __future__ import annotations

import base64
import secrets as random
from datetime import datetime, timedelta
from typing import Any

from keyfob.kit.clock import as_utc, isoformat


def new_secret() -> str:
    return "whsec_" + base64.b64encode(random.token_bytes(24)).decode()


def first_secrets(now: datetime) -> tuple[str, list[dict[str, Any]]]:
    secret = new_secret()
    return secret, [{"secret": secret, "createdAt": isoformat(now), "expiresAt": None}]


def rotate(
    stored: list[dict[str, Any]], now: datetime, grace: timedelta
) -> tuple[str, list[dict[str, Any]]]:
    """A new secret first; the newest old one stays valid for ``grace``; older ones go."""
    secret = new_secret()
    kept = [{**entry, "expiresAt": isoformat(now + grace)} for entry in active(stored, now)[:1]]
    return secret, [{"secret": secret, "createdAt": isoformat(now), "expiresAt": None}, *kept]


def active(stored: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    return [
        entry
        for entry in stored
        if entry.get("expiresAt") is None
        or as_utc(datetime.fromisoformat(entry["expiresAt"])) > now
    ]


def active_secrets(stored: list[dict[str, Any]], now: datetime) -> list[str]:
    return [entry["secret"] for entry in active(stored, now)]
