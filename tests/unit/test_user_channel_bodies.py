"""The WebSocket and push channels of a user callback body (§3.2): what is kept, what is
refused with a 400 naming the field, and that the stored form reads back the same."""

from __future__ import annotations

from typing import Any

import pytest

from keyfob.callbacks.attributes import AttributeType
from keyfob.callbacks.targets import TargetPolicy
from keyfob.callbacks.user_schemas import (
    PUSH,
    WEBSOCKET,
    load_user_stored,
    parse_user_callback_body,
)
from keyfob.errors import ErrorCode, KeyfobError
from oracle_schemas import assert_conforms

STRICT = TargetPolicy()
LOCAL = TargetPolicy(allow_private=True)


def parse(callback: dict[str, Any], policy: TargetPolicy = STRICT) -> Any:
    return parse_user_callback_body({"callback": callback}, target_policy=policy, push_offered=True)


def refusal(callback: dict[str, Any], policy: TargetPolicy = STRICT) -> KeyfobError:
    with pytest.raises(KeyfobError) as caught:
        parse(callback, policy)
    return caught.value


def test_a_websocket_callback_keeps_its_target_and_body_attributes() -> None:
    parsed = parse(
        {
            "websocket": {
                "target": "WSS://Feed.Example.com/cars?user=u&password=p",
                "attributes": [{"key": "who", "value": "$Vin"}],
            }
        }
    )
    assert parsed.channel == WEBSOCKET
    assert parsed.target == "wss://feed.example.com/cars?user=u&password=p"
    assert [(a.type, a.key) for a in parsed.attributes] == [(AttributeType.BODY, "who")]
    stored = parsed.to_stored()
    assert_conforms("b2c-api", "CallbackSubscribe", stored)
    assert load_user_stored(stored) == parsed


@pytest.mark.parametrize(
    ("target", "policy", "words"),
    [
        ("ws://feed.example.com/", STRICT, "must use wss"),
        ("https://feed.example.com/", STRICT, "the scheme 'https' is not allowed; use wss"),
        ("wss://127.0.0.1/", STRICT, "loopback or private address"),
        ("ws://169.254.169.254/", LOCAL, "cloud metadata address"),
        ("wss://[::ffff:10.0.0.1]/", STRICT, "carries the IPv4 address 10.0.0.1"),
        ("wss://localhost:9000/", STRICT, "is this machine"),
    ],
)
def test_websocket_targets_pass_the_webhook_address_rule(
    target: str, policy: TargetPolicy, words: str
) -> None:
    error = refusal({"websocket": {"target": target}}, policy)
    assert error.error is ErrorCode.INVALID_WEBHOOK_TARGET
    assert "callback.websocket.target" in error.message
    assert words in error.message


def test_a_local_websocket_is_allowed_in_local_development() -> None:
    assert parse({"websocket": {"target": "ws://127.0.0.1:9000/"}}, LOCAL).target == (
        "ws://127.0.0.1:9000/"
    )


def test_websocket_attributes_are_body_only() -> None:
    error = refusal(
        {
            "websocket": {
                "target": "wss://feed.example.com/",
                "attributes": [{"type": "Header", "key": "k", "value": "v"}],
            }
        }
    )
    assert error.error is ErrorCode.INVALID_BODY
    assert "callback.websocket.attributes[0].type: a websocket attribute is Body" in error.message


def test_a_push_callback_keeps_its_devices_and_header_attributes_by_default() -> None:
    parsed = parse(
        {
            "pushnotif": {
                "devices": ["token-a", "token-b"],
                "attributes": [
                    {"key": "title", "value": "$RemoteLabel"},
                    {"type": "Body", "key": "k", "value": "v"},
                ],
            }
        }
    )
    assert parsed.channel == PUSH
    assert parsed.devices == ("token-a", "token-b")
    assert [a.type for a in parsed.attributes] == [AttributeType.HEADER, AttributeType.BODY]
    stored = parsed.to_stored()
    assert_conforms("b2c-api", "CallbackSubscribe", stored)
    assert load_user_stored(stored) == parsed


@pytest.mark.parametrize(
    ("push", "words"),
    [
        ({"devices": []}, "callback.pushnotif.devices"),
        ({"devices": ["a", "a"]}, "devices[1]: the token is listed twice"),
        ({"devices": ["a b"]}, "devices[0]: an FCM token has no spaces"),
        (
            {"devices": ["a"], "attributes": [{"key": "google.x", "value": "1"}]},
            "'google.x' is reserved by FCM",
        ),
        (
            {"devices": ["a"], "attributes": [{"key": "from", "value": "1"}]},
            "'from' is reserved by FCM",
        ),
        (
            {"devices": ["a"], "attributes": [{"type": "Query", "key": "q", "value": "1"}]},
            "a pushnotif attribute is Header or Body",
        ),
        (
            {"devices": ["a"], "attributes": [{"key": "k", "value": "$Nope"}]},
            "$Nope",
        ),
    ],
)
def test_bad_push_bodies_are_a_400_naming_the_field(push: dict[str, Any], words: str) -> None:
    error = refusal({"pushnotif": push})
    assert words in error.message


def test_push_is_refused_where_fcm_is_not_configured() -> None:
    with pytest.raises(KeyfobError) as caught:
        parse_user_callback_body(
            {"callback": {"pushnotif": {"devices": ["a"]}}}, target_policy=STRICT
        )
    assert caught.value.error is ErrorCode.INVALID_BODY
    assert "no push (FCM) configuration" in caught.value.message
