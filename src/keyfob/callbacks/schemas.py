"""The body of POST/PUT ``/fleets/{fid}/remote/callbacks`` and of PUT ``.../status``.

Parsing is strict (no ``"3"`` for 3, no unknown member) so a client learns about a typo at
creation rather than from notifications that never arrive. What the contract's history
allows is kept (decision 25: ``notificationTypes`` and ``maxRetryNumber`` as aliases; the old
misspelling ``attributres`` is named and refused), and ``webhook.batch`` of the doc examples
is accepted and dropped (decision 5). JSON ``null`` in an optional member means "absent".

Without ``retryPolicy`` keyfob uses ``Bounded``, 3 retries, 10 s apart: the schema's own
defaults for ``retryNumber``/``retryDelay``, and enough to ride out a receiver restart without
holding a broken receiver's notifications for long. ``retryNumber`` is stored as given with
every policy; only ``Bounded`` counts it (decision 4). Counts and delays are capped at 72 h
worth of seconds, the retry horizon, beyond which a larger number changes nothing.

    parse_callback_body(json, target_policy) ─► CallbackSubscribe ─► .to_stored() (echoed as
    load_stored(stored)                      ─┘                      ``subscribe`` in GET)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, Strict

from keyfob.callbacks.attributes import AttributeSpec
from keyfob.callbacks.parsing import (
    MAX_ATTRIBUTES,
    Attributes,
    Input,
    attribute_specs,
    not_blank,
    stored_attributes,
    validate,
)
from keyfob.callbacks.targets import TargetPolicy, check_target
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.vocabulary import CallbackStatus, RemoteType

__all__ = [
    "DEFAULT_RETRY",
    "MAX_ATTRIBUTES",
    "AttributeSpec",
    "BatchSpec",
    "CallbackSubscribe",
    "RetryPolicyKind",
    "RetrySpec",
    "load_stored",
    "parse_callback_body",
    "parse_status_setter",
]

HORIZON_SECONDS = 72 * 3600
MAX_BATCH_SIZE = 1000


class RetryPolicyKind(StrEnum):
    NONE = "None"
    BOUNDED = "Bounded"
    ALWAYS = "Always"


@dataclass(frozen=True, slots=True)
class RetrySpec:
    policy: RetryPolicyKind
    retry_number: int
    retry_delay: int


@dataclass(frozen=True, slots=True)
class BatchSpec:
    size: int
    time_window: int


DEFAULT_RETRY = RetrySpec(RetryPolicyKind.BOUNDED, retry_number=3, retry_delay=10)
DEFAULT_TIME_WINDOW = 60


@dataclass(frozen=True, slots=True)
class CallbackSubscribe:
    """A checked callback body with every default filled in."""

    target: str
    webhook_name: str
    attributes: list[AttributeSpec]
    remote_types: list[RemoteType]
    retry: RetrySpec
    batch: BatchSpec | None
    label: str | None

    def to_stored(self) -> dict[str, Any]:
        """The official ``RemoteCallbackSubscribe`` shape, canonical names, defaults filled."""
        attributes = stored_attributes(self.attributes)
        body: dict[str, Any] = {} if self.label is None else {"label": self.label}
        body["callback"] = {
            "webhook": {"target": self.target, "name": self.webhook_name, "attributes": attributes}
        }
        body["retryPolicy"] = {
            "policy": self.retry.policy.value,
            "retryNumber": self.retry.retry_number,
            "retryDelay": self.retry.retry_delay,
        }
        if self.batch is not None:
            body["batchNotify"] = {"size": self.batch.size, "timeWindow": self.batch.time_window}
        body["remoteTypes"] = [remote_type.value for remote_type in self.remote_types]
        return body


# -- the accepted shape; field names are the JSON ones ------------------------------------

_Seconds = Annotated[int, Field(ge=1, le=HORIZON_SECONDS)]
_RemoteTypes = Annotated[list[Annotated[RemoteType, Strict(False)]], Field(min_length=1)]


class _WebhookIn(Input):
    target: str
    name: Annotated[str, Field(min_length=1, max_length=256)]
    attributes: Attributes | None = None
    batch: Any = None  # decision 5: doc examples carry it; accepted and dropped


class _CallbackIn(Input):
    webhook: _WebhookIn


class _RetryIn(Input):
    policy: Annotated[RetryPolicyKind, Strict(False)]
    retryNumber: _Seconds | None = None
    maxRetryNumber: _Seconds | None = None
    retryDelay: _Seconds | None = None


class _BatchIn(Input):
    size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]
    timeWindow: Annotated[int, Field(ge=5, le=HORIZON_SECONDS)] | None = None


class _BodyIn(Input):
    label: Annotated[str, Field(max_length=200)] | None = None
    callback: _CallbackIn
    retryPolicy: _RetryIn | None = None
    batchNotify: _BatchIn | None = None
    remoteTypes: _RemoteTypes | None = None
    notificationTypes: _RemoteTypes | None = None


class _StatusIn(Input):
    status: str


# -- parsing ------------------------------------------------------------------------------


def parse_callback_body(data: object, *, target_policy: TargetPolicy) -> CallbackSubscribe:
    """Check a POST/PUT callback body; every refusal is a ``KeyfobError`` naming the field."""
    return _parse(data, target_policy)


def load_stored(data: Mapping[str, Any]) -> CallbackSubscribe:
    """Rebuild a callback from ``to_stored()`` output without re-judging its target.

    The operator's allowlist may have shrunk since creation; delivery re-checks addresses.
    """
    return _parse(dict(data), None)


def parse_status_setter(data: object) -> CallbackStatus:
    """The body of PUT ``.../status``: ``{"status": "Running" | "Paused"}``."""
    status = validate(_StatusIn, data).status
    if status == CallbackStatus.FAILED:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "status: Failed is set by keyfob only; use Running or Paused",
        )
    if status not in (CallbackStatus.RUNNING, CallbackStatus.PAUSED):
        raise KeyfobError(ErrorCode.INVALID_BODY, f"status: {status!r} is not Running or Paused")
    return CallbackStatus(status)


def _parse(data: object, target_policy: TargetPolicy | None) -> CallbackSubscribe:
    _refuse_misspelt_attributes(data)
    body = validate(_BodyIn, data)
    webhook = body.callback.webhook
    target = webhook.target
    if target_policy is not None:
        target = check_target(target, target_policy, field="callback.webhook.target")
    return CallbackSubscribe(
        target=target,
        webhook_name=not_blank(webhook.name, "callback.webhook.name"),
        attributes=attribute_specs(webhook.attributes or [], "callback.webhook.attributes"),
        remote_types=_remote_types(body),
        retry=_retry(body.retryPolicy),
        batch=_batch(body.batchNotify),
        label=body.label,
    )


def _refuse_misspelt_attributes(data: object) -> None:
    callback = data.get("callback") if isinstance(data, dict) else None
    webhook = callback.get("webhook") if isinstance(callback, dict) else None
    if isinstance(webhook, dict) and "attributres" in webhook:
        raise KeyfobError(
            ErrorCode.LEGACY_FIELD,
            "callback.webhook.attributres: misspelt in old documentation; "
            "the field is callback.webhook.attributes",
        )


def _remote_types(body: _BodyIn) -> list[RemoteType]:
    if body.remoteTypes is not None and body.notificationTypes is not None:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "notificationTypes: former name of remoteTypes; give only remoteTypes",
        )
    name, types = "remoteTypes", body.remoteTypes
    if types is None:
        name, types = "notificationTypes", body.notificationTypes
    if types is None:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "remoteTypes is required: a non-empty array of "
            + ", ".join(remote_type.value for remote_type in RemoteType),
        )
    for index, remote_type in enumerate(types):
        if remote_type in types[:index]:
            raise KeyfobError(
                ErrorCode.INVALID_BODY, f"{name}[{index}]: {remote_type.value} is listed twice"
            )
    return list(types)


def _retry(retry: _RetryIn | None) -> RetrySpec:
    if retry is None:
        return DEFAULT_RETRY
    if retry.retryNumber is not None and retry.maxRetryNumber is not None:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "retryPolicy.maxRetryNumber: former name of retryPolicy.retryNumber; "
            "give only retryNumber",
        )
    number = retry.retryNumber if retry.retryNumber is not None else retry.maxRetryNumber
    return RetrySpec(
        policy=retry.policy,
        retry_number=DEFAULT_RETRY.retry_number if number is None else number,
        retry_delay=DEFAULT_RETRY.retry_delay if retry.retryDelay is None else retry.retryDelay,
    )


def _batch(batch: _BatchIn | None) -> BatchSpec | None:
    if batch is None:
        return None
    window = DEFAULT_TIME_WINDOW if batch.timeWindow is None else batch.timeWindow
    return BatchSpec(size=batch.size, time_window=window)
