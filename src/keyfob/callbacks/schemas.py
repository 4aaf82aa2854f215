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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from keyfob.callbacks.attributes import AttributeSpec, AttributeType, check_attribute
from keyfob.callbacks.targets import TargetPolicy, check_target
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.vocabulary import CallbackStatus, RemoteType

__all__ = [
    "DEFAULT_RETRY",
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
MAX_ATTRIBUTES = 64


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
        attributes = [
            {"type": a.type.value, "key": a.key, "value": a.value} for a in self.attributes
        ]
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


class _Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _AttributeIn(_Input):
    type: Annotated[AttributeType, Strict(False)]
    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]


class _WebhookIn(_Input):
    target: str
    name: Annotated[str, Field(min_length=1, max_length=256)]
    attributes: Annotated[list[_AttributeIn], Field(max_length=MAX_ATTRIBUTES)] | None = None
    batch: Any = None  # decision 5: doc examples carry it; accepted and dropped


class _CallbackIn(_Input):
    webhook: _WebhookIn


class _RetryIn(_Input):
    policy: Annotated[RetryPolicyKind, Strict(False)]
    retryNumber: _Seconds | None = None
    maxRetryNumber: _Seconds | None = None
    retryDelay: _Seconds | None = None


class _BatchIn(_Input):
    size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]
    timeWindow: Annotated[int, Field(ge=5, le=HORIZON_SECONDS)] | None = None


class _BodyIn(_Input):
    label: Annotated[str, Field(max_length=200)] | None = None
    callback: _CallbackIn
    retryPolicy: _RetryIn | None = None
    batchNotify: _BatchIn | None = None
    remoteTypes: _RemoteTypes | None = None
    notificationTypes: _RemoteTypes | None = None


class _StatusIn(_Input):
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
    status = _validate(_StatusIn, data).status
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
    body = _validate(_BodyIn, data)
    webhook = body.callback.webhook
    target = webhook.target
    if target_policy is not None:
        target = check_target(target, target_policy, field="callback.webhook.target")
    return CallbackSubscribe(
        target=target,
        webhook_name=_not_blank(webhook.name, "callback.webhook.name"),
        attributes=_attributes(webhook.attributes or []),
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


def _not_blank(value: str, path: str) -> str:
    if not value.strip():
        raise KeyfobError(ErrorCode.INVALID_BODY, f"{path}: must not be blank")
    return value


def _attributes(items: Sequence[_AttributeIn]) -> list[AttributeSpec]:
    specs: list[AttributeSpec] = []
    headers: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"callback.webhook.attributes[{index}]"
        spec = AttributeSpec(type=item.type, key=item.key, value=item.value)
        check_attribute(spec, path)
        if spec.type is AttributeType.HEADER:
            first = headers.setdefault(spec.key.lower(), index)
            if first != index:
                raise KeyfobError(
                    ErrorCode.INVALID_BODY,
                    f"{path}.key: the header {spec.key} is already set by "
                    f"callback.webhook.attributes[{first}]",
                )
        specs.append(spec)
    return specs


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


# -- pydantic errors into the contract's words ---------------------------------------------

_M = TypeVar("_M", bound=BaseModel)

_PHRASES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
}


def _validate(model: type[_M], data: object) -> _M:
    if not isinstance(data, dict):
        raise KeyfobError(ErrorCode.INVALID_BODY, "body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error["loc"], error["type"], error["msg"]) for error in exc.errors()]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise KeyfobError(ErrorCode.INVALID_BODY, "; ".join(problems[:3]) + more) from None


def _describe(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    phrase = _PHRASES.get(kind) or message[:1].lower() + message[1:]
    return f"{path or 'body'}: {phrase}" if kind != "missing" else f"{path} {phrase}"
