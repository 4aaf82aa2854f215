"""Answers of keyfob's command-control extensions, and their shapes for ``/openapi.json``.

The extensions are endpoints of their own (docs/extensions.md), so none of these shapes ever
reaches a client that only calls the official API.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyfob.api.docs_models import Link
from keyfob.kit.clock import isoformat
from keyfob.kit.hal import link
from keyfob.notifications.probe import Probe


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
