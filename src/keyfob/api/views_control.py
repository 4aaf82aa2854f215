"""Answers of keyfob's command-control extensions, and their shapes for ``/openapi.json``.

The extensions are endpoints of their own (docs/extensions.md), so none of these shapes ever
reaches a client that only calls the official API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyfob.api.docs_models import Link
from keyfob.kit.clock import isoformat
from keyfob.kit.hal import link
from keyfob.notifications.probe import Probe
from keyfob.vehicles.budget import WakeBudget


class CallbackTestResult(BaseModel):
    """What the receiver made of a test notification."""

    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    callbackId: str
    webhookId: str = Field(description="The test request's webhook-id (msg_test_...).")
    sentAt: str
    delivered: bool = Field(description="The receiver answered 2XX.")
    statusCode: int | None = Field(description="The receiver's HTTP status; null if none.")
    latencyMs: int
    responseExcerpt: str | None = Field(description="The first 2 KiB of the receiver's answer.")
    errorClass: str | None = Field(description="Why nothing or no 2XX came back.")
    detail: str | None = None


def callback_test_result(callback_href: str, callback_id: str, probe: Probe) -> dict[str, Any]:
    outcome = probe.outcome
    return {
        "_links": {"callback": link(callback_href)},
        "callbackId": callback_id,
        "webhookId": probe.message_id,
        "sentAt": isoformat(probe.sent_at),
        "delivered": outcome.delivered,
        "statusCode": outcome.status_code,
        "latencyMs": outcome.latency_ms,
        "responseExcerpt": outcome.response_excerpt,
        "errorClass": outcome.error_class,
        "detail": outcome.detail,
    }


class VehicleBudget(BaseModel):
    """A vehicle's wake-up budgets and the caller's request budget."""

    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    vin: str
    at: str
    wakeUps: dict[str, Any]
    requests: dict[str, int]


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)


def _requests(rate_headers: dict[str, str] | None) -> dict[str, int]:
    """The caller's ``X-RateLimit-*`` figures after this request (§9.1), by name."""
    found = rate_headers or {}
    names = {
        "dayLimit": "X-RateLimit-Limit-1",
        "dayRemaining": "X-RateLimit-Remaining-1",
        "burstLimit": "X-RateLimit-Limit-2",
        "burstRemaining": "X-RateLimit-Remaining-2",
    }
    return {key: int(found[header]) for key, header in names.items() if header in found}


def vehicle_budget(
    self_href: str,
    vehicle_href: str,
    vin: str,
    budget: WakeBudget,
    rate_headers: dict[str, str] | None,
) -> dict[str, Any]:
    limits = budget.limits
    return {
        "_links": {"self": link(self_href), "vehicle": link(vehicle_href)},
        "vin": vin,
        "at": isoformat(budget.now),
        "wakeUps": {
            "remaining": budget.remaining,
            "resetsAt": isoformat(budget.resets_at),
            "month": {
                "quota": limits.month_quota,
                "used": budget.month_used,
                "remaining": budget.month_remaining,
                "resetsAt": isoformat(budget.month_resets_at),
            },
            "shortWindow": {
                "limit": limits.short_limit,
                "windowSeconds": int(limits.short_window.total_seconds()),
                "used": budget.short_used,
                "remaining": budget.short_remaining,
                "freesAt": _when(budget.short_frees_at),
            },
        },
        "requests": _requests(rate_headers),
    }
