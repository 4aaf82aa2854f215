"""The user face's callback body (B2C ``CallbackSubscribe``) and a remote's own attributes.

What a client of the user face sends at set-up (the body real clients send is the first case)
and the refusals it must get instead of a callback that would never deliver.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from keyfob.callbacks.attributes import AttributeSpec, AttributeType
from keyfob.callbacks.remote_attributes import (
    RemoteAttributes,
    effective,
    load_remote_attributes,
    parse_remote_attributes,
)
from keyfob.callbacks.targets import TargetPolicy
from keyfob.callbacks.user_schemas import (
    CallbackType,
    load_user_stored,
    parse_user_callback_body,
)
from keyfob.errors import ErrorCode, KeyfobError
from oracle_schemas import assert_conforms

STRICT = TargetPolicy()
CLIENT_BODY: dict[str, Any] = {
    "label": "home assistant",
    "type": ["Remote"],
    "callback": {
        "webhook": {
            "name": "ha",
            "target": "https://ha.example.com/api/webhook/abc",
            "attributes": [{"type": "Header", "key": "empty_but_required", "value": "."}],
        }
    },
}


def refusal(body: object, policy: TargetPolicy = STRICT) -> KeyfobError:
    with pytest.raises(KeyfobError) as caught:
        parse_user_callback_body(body, target_policy=policy)
    return caught.value


def with_callback(callback: object, **top: Any) -> dict[str, Any]:
    return {"callback": callback, **top}


def test_the_body_real_clients_send_is_echoed_as_sent() -> None:
    parsed = parse_user_callback_body(CLIENT_BODY, target_policy=STRICT)
    assert parsed.types == (CallbackType.REMOTE,)
    assert parsed.to_stored() == CLIENT_BODY
    assert_conforms("b2c-api", "CallbackSubscribe", parsed.to_stored())
    assert load_user_stored(parsed.to_stored()) == parsed


def test_absent_type_means_both_features_and_stays_absent_in_the_echo() -> None:
    body = {"callback": {"webhook": {"name": "w", "target": "https://h.example.com/x"}}}
    parsed = parse_user_callback_body(body, target_policy=STRICT)
    assert parsed.types is None
    assert parsed.effective_types == (CallbackType.MONITOR, CallbackType.REMOTE)
    stored = parsed.to_stored()
    assert "type" not in stored
    assert stored["callback"]["webhook"]["attributes"] == []
    assert_conforms("b2c-api", "CallbackSubscribe", stored)


def test_user_face_variables_are_accepted_in_any_case() -> None:
    attributes = [
        {"type": "Header", "key": "X-Car", "value": "$vin"},
        {"type": "Query", "key": "cb", "value": "${CallbackId}-$CALLBACKLABEL"},
        {"type": "Body", "key": "what", "value": "$RemoteType/$remoteStatus/$RemoteLabel"},
    ]
    body = copy.deepcopy(CLIENT_BODY)
    body["callback"]["webhook"]["attributes"] = attributes
    parsed = parse_user_callback_body(body, target_policy=STRICT)
    assert [a.value for a in parsed.attributes] == [a["value"] for a in attributes]


@pytest.mark.parametrize(
    ("value", "named"),
    [("$fleetID", "$fleetID"), ("$vid", "$vid"), ("$monitorID", "$monitorID")],
)
def test_variables_of_other_faces_are_refused_naming_the_user_ones(value: str, named: str) -> None:
    body = copy.deepcopy(CLIENT_BODY)
    body["callback"]["webhook"]["attributes"] = [{"type": "Body", "key": "k", "value": value}]
    error = refusal(body)
    assert error.error is ErrorCode.UNKNOWN_VARIABLE
    assert named in error.message
    assert "$CallbackLabel" in error.message
    assert "callback.webhook.attributes[0].value" in error.message


@pytest.mark.parametrize(
    ("callback", "words"),
    [
        ({}, "exactly one of webhook, websocket, pushnotif"),
        (
            {
                "webhook": {"name": "w", "target": "https://h.example.com/"},
                "websocket": {"target": "wss://h.example.com/"},
            },
            "(found webhook, websocket)",
        ),
        ({"pushnotif": {"devices": ["fcm-token"]}}, "this server has no push (FCM) configuration"),
        ({"pushnotif": "not even an object"}, "callback.pushnotif: this server has no push"),
    ],
)
def test_anything_but_exactly_one_offered_channel_is_a_clear_400(callback: Any, words: str) -> None:
    error = refusal(with_callback(callback))
    assert error.error is ErrorCode.INVALID_BODY
    assert words in error.message


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ("[]", ErrorCode.INVALID_BODY, "body: must be a JSON object"),
        ({"label": "x"}, ErrorCode.INVALID_BODY, "callback is required"),
        (with_callback({"webhook": {"name": "w"}}), ErrorCode.INVALID_BODY, "target is required"),
        (
            with_callback({"webhook": {"name": " ", "target": "https://h.example.com/"}}),
            ErrorCode.INVALID_BODY,
            "callback.webhook.name: must not be blank",
        ),
        (
            with_callback({"webhook": {"name": "w", "target": "http://10.0.0.7/hook"}}),
            ErrorCode.INVALID_WEBHOOK_TARGET,
            "callback.webhook.target",
        ),
        (
            with_callback({"webhook": {"name": "w", "target": "https://h.example.com/"}}, type=[]),
            ErrorCode.INVALID_BODY,
            "type: must list at least one",
        ),
        (
            with_callback(
                {"webhook": {"name": "w", "target": "https://h.example.com/"}},
                type=["Remote", "Remote"],
            ),
            ErrorCode.INVALID_BODY,
            "type[1]: Remote is listed twice",
        ),
        (
            with_callback(
                {"webhook": {"name": "w", "target": "https://h.example.com/"}}, type=["Alarm"]
            ),
            ErrorCode.INVALID_BODY,
            "type[0]",
        ),
        (
            with_callback(
                {"webhook": {"name": "w", "target": "https://h.example.com/"}},
                remoteTypes=["Horn"],
            ),
            ErrorCode.INVALID_BODY,
            "remoteTypes: is not a known field",
        ),
        (
            with_callback(
                {"webhook": {"name": "w", "target": "https://h.example.com/"}},
                retryPolicy={"policy": "None"},
            ),
            ErrorCode.INVALID_BODY,
            "retryPolicy: is not a known field",
        ),
        (
            with_callback(
                {
                    "webhook": {
                        "name": "w",
                        "target": "https://h.example.com/",
                        "attributes": [{"type": "Header", "key": "keyfob-sequence", "value": "1"}],
                    }
                }
            ),
            ErrorCode.INVALID_BODY,
            "set by keyfob itself",
        ),
    ],
)
def test_refusals_name_the_field(body: object, error: ErrorCode, words: str) -> None:
    found = refusal(body)
    assert found.error is error, found.message
    assert words in found.message


def test_webhook_batch_of_the_doc_examples_is_accepted_and_dropped() -> None:
    body = copy.deepcopy(CLIENT_BODY)
    body["callback"]["webhook"]["batch"] = {"enabled": True, "size": 100}
    stored = parse_user_callback_body(body, target_policy=STRICT).to_stored()
    assert "batch" not in stored["callback"]["webhook"]


# -- a remote's own attributes ------------------------------------------------------------


def spec(kind: str, key: str, value: str) -> AttributeSpec:
    return AttributeSpec(AttributeType(kind), key, value)


def test_remote_attributes_replace_namesakes_in_place_and_add_the_rest() -> None:
    callback = [
        spec("Header", "Authorization", "Bearer callback"),
        spec("Body", "app", "ha"),
        spec("Query", "tenant", "7"),
    ]
    remote = parse_remote_attributes(
        {
            "door": {"state": "Locked"},
            "callbackAttributes": {
                "webhook": [
                    {"type": "Header", "key": "authorization", "value": "Bearer remote"},
                    {"type": "Query", "key": "trace", "value": "$RemoteLabel"},
                ]
            },
            "attributes": [
                {"type": "Body", "key": "app", "value": "lock button"},
                {"type": "Body", "key": "status", "value": "$RemoteStatus"},
            ],
        }
    )
    assert effective(callback, remote) == [
        spec("Header", "authorization", "Bearer remote"),
        spec("Body", "app", "lock button"),
        spec("Query", "tenant", "7"),
        spec("Query", "trace", "$RemoteLabel"),
        spec("Body", "status", "$RemoteStatus"),
    ]
    own, channel = remote.stored()
    assert load_remote_attributes(own, channel) == remote
    assert remote.echo() == {"attributes": own, "callbackAttributes": channel}
    assert_conforms("b2c-api", "Remote", {"door": {"state": "Locked"}, **remote.echo()})


def test_a_remote_without_attributes_leaves_the_callbacks_alone() -> None:
    remote = parse_remote_attributes({"horn": {"state": "Activated"}})
    assert remote == RemoteAttributes()
    assert remote.stored() == (None, None)
    assert remote.echo() == {}
    callback = [spec("Header", "X-A", "1")]
    assert effective(callback, remote) == callback


@pytest.mark.parametrize(
    ("members", "error", "words"),
    [
        (
            {"attributes": [{"type": "Query", "key": "q", "value": "1"}]},
            ErrorCode.INVALID_BODY,
            "attributes[0].type: a remote's own attributes are Header or Body",
        ),
        (
            {"attributes": [{"type": "Body", "key": "k", "value": "$fleetID"}]},
            ErrorCode.UNKNOWN_VARIABLE,
            "attributes[0].value: unknown variable $fleetID",
        ),
        (
            {"callbackAttributes": {"websocket": [{"type": "Header", "key": "k", "value": "v"}]}},
            ErrorCode.INVALID_BODY,
            "callbackAttributes.websocket[0].type: a websocket attribute is Body",
        ),
        (
            {"callbackAttributes": {"pushnotif": [{"key": "gcm.x", "value": "v"}]}},
            ErrorCode.INVALID_BODY,
            "callbackAttributes.pushnotif[0].key: 'gcm.x' is reserved by FCM",
        ),
        (
            {"callbackAttributes": {"fcm": []}},
            ErrorCode.INVALID_BODY,
            "callbackAttributes.fcm: is not a known field",
        ),
        ({"attributes": {"type": "Body"}}, ErrorCode.INVALID_BODY, "attributes: must be an array"),
        (
            {
                "attributes": [
                    {"type": "Header", "key": "X-A", "value": "1"},
                    {"type": "Header", "key": "x-a", "value": "2"},
                ]
            },
            ErrorCode.INVALID_BODY,
            "attributes[1].key: the header x-a is already set by attributes[0]",
        ),
    ],
)
def test_remote_attribute_refusals_name_the_field(
    members: dict[str, Any], error: ErrorCode, words: str
) -> None:
    with pytest.raises(KeyfobError) as caught:
        parse_remote_attributes({"horn": {"state": "Activated"}, **members})
    assert caught.value.error is error, caught.value.message
    assert words in caught.value.message
