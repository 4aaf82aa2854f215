"""The console's callback form: the fields a person sets, and the API's callback body.

Creating and editing both build the body ``POST``/``PUT .../remote/callbacks`` take, and
``callbacks.schemas.parse_callback_body`` judges it, so the console accepts exactly what the
API accepts. Editing starts from the stored body, so what the form does not show (webhook
attributes, batching) is kept as it was.
"""

from __future__ import annotations

import copy
from typing import Any

from keyfob.vocabulary import RemoteType

REMOTE_TYPES = tuple(t.value for t in RemoteType)
POLICIES = ("Bounded", "None", "Always")
FIELDS = [
    "label",
    "callback.webhook.name",
    "callback.webhook.target",
    "retryPolicy.policy",
    "retryPolicy.retryNumber",
    "retryPolicy.retryDelay",
    "remoteTypes",
]


def _number(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text.strip()


def body_of(sent: dict[str, str], stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """The callback body of the form's fields, on top of ``stored`` when editing."""
    body = copy.deepcopy(stored) if stored else {"callback": {"webhook": {}}}
    label = sent.get("label", "").strip()
    if label:
        body["label"] = label
    else:
        body.pop("label", None)
    webhook = body.setdefault("callback", {}).setdefault("webhook", {})
    webhook["name"] = sent.get("callback.webhook.name", "").strip()
    webhook["target"] = sent.get("callback.webhook.target", "").strip()
    retry: dict[str, Any] = {"policy": sent.get("retryPolicy.policy", "Bounded")}
    for name in ("retryNumber", "retryDelay"):
        text = sent.get(f"retryPolicy.{name}", "")
        if text.strip():
            retry[name] = _number(text)
    body["retryPolicy"] = retry
    body["remoteTypes"] = [t for t in REMOTE_TYPES if sent.get(f"type.{t}")]
    return body


def values_of(stored: dict[str, Any]) -> dict[str, str]:
    """The form's fields as a stored callback fills them."""
    webhook = stored.get("callback", {}).get("webhook", {})
    retry = stored.get("retryPolicy", {})
    values = {
        "label": stored.get("label", ""),
        "callback.webhook.name": webhook.get("name", ""),
        "callback.webhook.target": webhook.get("target", ""),
        "retryPolicy.policy": retry.get("policy", "Bounded"),
        "retryPolicy.retryNumber": str(retry.get("retryNumber", "")),
        "retryPolicy.retryDelay": str(retry.get("retryDelay", "")),
    }
    for remote_type in stored.get("remoteTypes", []):
        values[f"type.{remote_type}"] = "on"
    return values
