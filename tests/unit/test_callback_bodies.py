"""The B2B callback body: what is accepted, what is refused and why, and what is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob.callbacks.attributes import AttributeSpec, AttributeType
from keyfob.callbacks.schemas import (
    BatchSpec,
    CallbackSubscribe,
    RetryPolicyKind,
    RetrySpec,
    load_stored,
    parse_callback_body,
    parse_status_setter,
)
from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.vocabulary import CallbackStatus, RemoteType
from oracle_schemas import assert_conforms, errors

STRICT = TargetPolicy()
MINIMAL: dict[str, Any] = {
    "callback": {"webhook": {"target": "https://hooks.example.com/cb", "name": "main"}},
    "remoteTypes": ["Horn"],
}
FULL: dict[str, Any] = {
    "label": "fleet alerts",
    "callback": {
        "webhook": {
            "target": "https://hooks.example.com/cb?tenant=7",
            "name": "main",
            "attributes": [
                {"type": "Header", "key": "Authorization", "value": "Basic dXNlcjpwYXNz"},
                {"type": "Query", "key": "fleet", "value": "$fleetID"},
                {"type": "Body", "key": "vin", "value": "$VIN"},
            ],
        }
    },
    "retryPolicy": {"policy": "Bounded", "retryNumber": 5, "retryDelay": 30},
    "batchNotify": {"size": 20, "timeWindow": 15},
    "remoteTypes": ["Doors", "Horn", "Stolen"],
}


def parse(body: object, policy: TargetPolicy = STRICT) -> CallbackSubscribe:
    return parse_callback_body(body, target_policy=policy)


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` (``a.b[0].c``) set, or removed if ``...``."""
    body = copy.deepcopy(base)
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return body


def refusal(body: object, policy: TargetPolicy = STRICT) -> KeyfobError:
    with pytest.raises(KeyfobError) as caught:
        parse(body, policy)
    return caught.value


def test_minimal_body_gets_keyfob_defaults() -> None:
    parsed = parse(MINIMAL)
    assert parsed.target == "https://hooks.example.com/cb"
    assert parsed.webhook_name == "main"
    assert parsed.remote_types == [RemoteType.HORN]
    assert parsed.retry == RetrySpec(RetryPolicyKind.BOUNDED, retry_number=3, retry_delay=10)
    assert parsed.batch is None
    assert parsed.attributes == []
    assert parsed.label is None
    assert parsed.to_stored() == {
        "callback": {
            "webhook": {"target": "https://hooks.example.com/cb", "name": "main", "attributes": []}
        },
        "retryPolicy": {"policy": "Bounded", "retryNumber": 3, "retryDelay": 10},
        "remoteTypes": ["Horn"],
    }
    assert_conforms("b2b-api", "RemoteCallbackSubscribe", parsed.to_stored())


def test_full_body_is_kept_as_given() -> None:
    parsed = parse(FULL)
    assert parsed.label == "fleet alerts"
    assert parsed.attributes == [
        AttributeSpec(AttributeType.HEADER, "Authorization", "Basic dXNlcjpwYXNz"),
        AttributeSpec(AttributeType.QUERY, "fleet", "$fleetID"),
        AttributeSpec(AttributeType.BODY, "vin", "$VIN"),
    ]
    assert parsed.retry == RetrySpec(RetryPolicyKind.BOUNDED, 5, 30)
    assert parsed.batch == BatchSpec(size=20, time_window=15)
    assert parsed.remote_types == [RemoteType.DOORS, RemoteType.HORN, RemoteType.STOLEN]
    assert parsed.to_stored() == FULL
    assert_conforms("b2b-api", "RemoteCallbackSubscribe", parsed.to_stored())


def test_stored_body_loads_back_to_the_same_callback() -> None:
    parsed = parse(FULL)
    assert load_stored(parsed.to_stored()) == parsed


def test_load_stored_does_not_rejudge_the_target() -> None:
    local = parse(
        changed(MINIMAL, "callback.webhook.target", "http://127.0.0.1:9000/h"),
        TargetPolicy(allow_private=True),
    )
    assert load_stored(local.to_stored()).target == "http://127.0.0.1:9000/h"
    assert refusal(local.to_stored()).error is ErrorCode.INVALID_WEBHOOK_TARGET


def test_documented_example_shape_is_accepted_and_webhook_batch_dropped() -> None:
    body = {
        "label": "cb",
        "callback": {
            "webhook": {
                "target": "https://my.post.callback",
                "name": "wh",
                "batch": {"enabled": True, "size": 100},
                "attributes": [{"type": "Header", "key": "X-Vehicle_Id", "value": "$vin"}],
            }
        },
        "retryPolicy": {"policy": "None", "retryNumber": 3, "retryDelay": 10},
        "batchNotify": {"size": 1, "timeWindow": 60},
        "remoteTypes": ["Horn", "Doors"],
    }
    stored = parse(body).to_stored()
    assert "batch" not in stored["callback"]["webhook"]
    assert stored["retryPolicy"] == {"policy": "None", "retryNumber": 3, "retryDelay": 10}
    assert_conforms("b2b-api", "RemoteCallbackSubscribe", stored)
    # the documented example itself says size 0, which decision 5 refuses
    zero = refusal(changed(body, "batchNotify.size", 0))
    assert zero.error is ErrorCode.INVALID_BODY
    assert zero.message.startswith("batchNotify.size: ")


def test_legacy_aliases_are_stored_under_current_names() -> None:
    body = changed(MINIMAL, "remoteTypes", ...)
    body["notificationTypes"] = ["ThermalPreconditioning", "ElectricBatteryChargingRequest"]
    body["retryPolicy"] = {"policy": "Bounded", "maxRetryNumber": 7}
    stored = parse(body).to_stored()
    assert stored["remoteTypes"] == ["ThermalPreconditioning", "ElectricBatteryChargingRequest"]
    assert stored["retryPolicy"] == {"policy": "Bounded", "retryNumber": 7, "retryDelay": 10}
    assert "notificationTypes" not in stored
    assert_conforms("b2b-api", "RemoteCallbackSubscribe", stored)


def test_always_is_accepted_despite_the_remote_schema() -> None:
    stored = parse(changed(MINIMAL, "retryPolicy", {"policy": "Always", "retryDelay": 120}))
    assert stored.retry == RetrySpec(RetryPolicyKind.ALWAYS, 3, 120)
    # Decision 4 keeps Always on remote callbacks; the official RemoteCallbackSubscribe narrows
    # policy to None|Bounded. That is the one divergence tolerated here.
    problems = errors("b2b-api", "RemoteCallbackSubscribe", stored.to_stored())
    assert problems == ["retryPolicy/policy: 'Always' is not one of ['None', 'Bounded']"]


def test_null_optional_members_mean_absent() -> None:
    body = copy.deepcopy(MINIMAL)
    body.update(label=None, retryPolicy=None, batchNotify=None)
    body["callback"]["webhook"]["attributes"] = None
    assert parse(body) == parse(MINIMAL)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("callback", ..., "callback is required"),
        ("callback.webhook", ..., "callback.webhook is required"),
        ("callback.webhook.target", ..., "callback.webhook.target is required"),
        ("callback.webhook.name", ..., "callback.webhook.name is required"),
        ("callback.webhook.name", "", "callback.webhook.name: "),
        ("callback.webhook.name", "   ", "callback.webhook.name: must not be blank"),
        ("callback.webhook.name", 7, "callback.webhook.name: must be a string"),
        ("callback.webhook.target", 7, "callback.webhook.target: must be a string"),
        ("callback", [], "callback: must be a JSON object"),
        ("callback.webhook.attributes", {}, "callback.webhook.attributes: must be an array"),
        ("callback.webhook.attributes[0].type", "Cookie", "attributes[0].type: "),
        ("callback.webhook.attributes[0].type", "header", "attributes[0].type: "),
        ("callback.webhook.attributes[0].key", "", "attributes[0].key: "),
        ("callback.webhook.attributes[0].key", ..., "attributes[0].key is required"),
        ("callback.webhook.attributes[1].value", ..., "attributes[1].value is required"),
        ("callback.webhook.attributes[1].value", 3, "attributes[1].value: must be a string"),
        ("callback.webhook.attributes[2].type", ..., "attributes[2].type is required"),
        ("callback.webhook.attributes[0].key", "Content-Type", "attributes[0].key: "),
        ("callback.webhook.attributes[0].key", "webhook-signature", "attributes[0].key: "),
        ("callback.webhook.attributes[0].key", "Bad Name", "attributes[0].key: "),
        ("callback.webhook.attributes[0].value", "x\r\nHost: evil", "attributes[0].value: "),
        ("callback.webhook.attributes[0].extra", 1, "attributes[0].extra: is not a known"),
        ("retryPolicy.policy", ..., "retryPolicy.policy is required"),
        ("retryPolicy.policy", "Never", "retryPolicy.policy: "),
        ("retryPolicy.policy", "bounded", "retryPolicy.policy: "),
        ("retryPolicy.retryNumber", 0, "retryPolicy.retryNumber: "),
        ("retryPolicy.retryNumber", "3", "retryPolicy.retryNumber: must be an integer"),
        ("retryPolicy.retryNumber", 3.0, "retryPolicy.retryNumber: must be an integer"),
        ("retryPolicy.retryNumber", True, "retryPolicy.retryNumber: must be an integer"),
        ("retryPolicy.retryDelay", 0, "retryPolicy.retryDelay: "),
        ("retryPolicy.retryDelay", 300_000, "retryPolicy.retryDelay: "),
        ("retryPolicy.retryDelay", "10", "retryPolicy.retryDelay: must be an integer"),
        ("retryPolicy.maxRetries", 3, "retryPolicy.maxRetries: is not a known field"),
        ("retryPolicy", "Bounded", "retryPolicy: must be a JSON object"),
        ("batchNotify.size", ..., "batchNotify.size is required"),
        ("batchNotify.size", 0, "batchNotify.size: "),
        ("batchNotify.size", -1, "batchNotify.size: "),
        ("batchNotify.size", "20", "batchNotify.size: must be an integer"),
        ("batchNotify.timeWindow", 4, "batchNotify.timeWindow: "),
        ("batchNotify.enabled", True, "batchNotify.enabled: is not a known field"),
        ("remoteTypes", [], "remoteTypes: "),
        ("remoteTypes", "Horn", "remoteTypes: must be an array"),
        ("remoteTypes", ["Horn", "Hron"], "remoteTypes[1]: "),
        ("remoteTypes", ["VehicleState"], "remoteTypes[0]: "),
        ("remoteTypes", ["Horn", "Doors", "Horn"], "remoteTypes[2]: Horn is listed twice"),
        ("remoteTypes", ..., "remoteTypes is required"),
        ("label", 5, "label: must be a string"),
        ("label", "x" * 201, "label: "),
        ("extendedEventParam", {}, "extendedEventParam: is not a known field"),
        ("callback.websocket", {}, "callback.websocket: is not a known field"),
        ("callback.webhook.secret", "s", "callback.webhook.secret: is not a known field"),
    ],
)
def test_invalid_body_names_the_field(path: str, value: Any, message: str) -> None:
    error = refusal(changed(FULL, path, value))
    assert error.error is ErrorCode.INVALID_BODY
    assert message in error.message


def test_several_problems_are_reported_together() -> None:
    body = changed(FULL, "retryPolicy.retryNumber", "3")
    body["batchNotify"]["size"] = 0
    message = refusal(body).message
    assert "retryPolicy.retryNumber" in message
    assert "batchNotify.size" in message


@pytest.mark.parametrize("body", [[], "x", None, 3])
def test_body_must_be_an_object(body: object) -> None:
    error = refusal(body)
    assert error.error is ErrorCode.INVALID_BODY
    assert error.message == "body: must be a JSON object"


def test_misspelt_attributes_of_old_docs_is_a_legacy_field() -> None:
    body = changed(MINIMAL, "callback.webhook.attributres", [])
    error = refusal(body)
    assert error.error is ErrorCode.LEGACY_FIELD
    assert "callback.webhook.attributes" in error.message


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"notificationTypes": ["Horn"]}, "notificationTypes"),
        (
            {"retryPolicy": {"policy": "Bounded", "retryNumber": 2, "maxRetryNumber": 2}},
            "retryPolicy.maxRetryNumber",
        ),
    ],
)
def test_alias_together_with_current_name_is_refused(extra: dict[str, Any], named: str) -> None:
    error = refusal({**MINIMAL, **extra})
    assert error.error is ErrorCode.INVALID_BODY
    assert error.message.startswith(named)


def test_unknown_variable_is_refused_with_its_own_code() -> None:
    error = refusal(changed(FULL, "callback.webhook.attributes[1].value", "$fleetId-$vehicle"))
    assert error.error is ErrorCode.UNKNOWN_VARIABLE
    assert error.message.startswith("callback.webhook.attributes[1].value: ")
    assert "$vehicle" in error.message


def test_same_header_twice_is_refused() -> None:
    body = changed(
        FULL,
        "callback.webhook.attributes[1]",
        {"type": "Header", "key": "authorization", "value": "x"},
    )
    error = refusal(body)
    assert error.message.startswith("callback.webhook.attributes[1].key: ")
    assert "attributes[0]" in error.message


def test_query_and_body_keys_may_repeat() -> None:
    body = changed(
        FULL, "callback.webhook.attributes[2]", {"type": "Query", "key": "fleet", "value": "x"}
    )
    assert [a.key for a in parse(body).attributes] == ["Authorization", "fleet", "fleet"]


def test_target_is_judged_by_the_policy_and_normalized() -> None:
    http = changed(MINIMAL, "callback.webhook.target", "http://localhost:8080/hook")
    error = refusal(http)
    assert error.error is ErrorCode.INVALID_WEBHOOK_TARGET
    assert error.message.startswith("callback.webhook.target: ")
    assert "--allow-private-webhooks" in error.message
    assert parse(http, TargetPolicy(allow_private=True)).target == "http://localhost:8080/hook"
    upper = changed(MINIMAL, "callback.webhook.target", "HTTPS://Hooks.Example.com/A")
    assert (
        parse(upper).to_stored()["callback"]["webhook"]["target"] == "https://hooks.example.com/A"
    )


@pytest.mark.parametrize(
    ("status", "expected"), [("Running", CallbackStatus.RUNNING), ("Paused", CallbackStatus.PAUSED)]
)
def test_status_setter_accepts_running_and_paused(status: str, expected: CallbackStatus) -> None:
    assert parse_status_setter({"status": status}) is expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "Failed"}, "status: Failed is set by keyfob only"),
        ({"status": "running"}, "status: 'running' is not Running or Paused"),
        ({"status": 1}, "status: must be a string"),
        ({}, "status is required"),
        ({"status": "Paused", "reason": "x"}, "reason: is not a known field"),
        (["Paused"], "body: must be a JSON object"),
    ],
)
def test_status_setter_refusals(body: object, message: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        parse_status_setter(body)
    assert caught.value.error is ErrorCode.INVALID_BODY
    assert message in caught.value.message


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70)
    | st.sampled_from(["Horn", "None", "$vin", "https://a.example/", ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "callback",
                    "webhook",
                    "target",
                    "name",
                    "attributes",
                    "type",
                    "key",
                    "value",
                    "retryPolicy",
                    "policy",
                    "retryNumber",
                    "batchNotify",
                    "size",
                    "remoteTypes",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(body=_json)
def test_any_json_is_either_accepted_or_refused_with_a_keyfob_error(body: object) -> None:
    outcome: CallbackSubscribe | KeyfobError
    try:
        outcome = parse(body)
    except KeyfobError as error:
        outcome = error
    if isinstance(outcome, KeyfobError):
        assert outcome.status == 400
        assert outcome.message.split(":")[0].strip()
    else:
        assert_conforms("b2b-api", "RemoteCallbackSubscribe", outcome.to_stored())
