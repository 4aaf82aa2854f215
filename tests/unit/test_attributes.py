"""Attribute templating: what a receiver sees in headers, query and body for each event."""

from __future__ import annotations

import pytest

from keyfob.callbacks.attributes import (
    AttributeSpec,
    AttributeType,
    batching_allowed,
    check_attribute,
    render,
    render_request_parts,
    validate_value,
    variables_in,
    varies_per_event,
)
from keyfob.errors import ErrorCode, KeyfobError

VARIABLES = {
    "vin": "VF3ABCDE0FG123456",
    "callbackID": "c0ffee",
    "remoteType": "Horn",
    "fleetID": "fleet-7",
}


def header(key: str, value: str) -> AttributeSpec:
    return AttributeSpec(AttributeType.HEADER, key, value)


def query(key: str, value: str) -> AttributeSpec:
    return AttributeSpec(AttributeType.QUERY, key, value)


def body(key: str, value: str) -> AttributeSpec:
    return AttributeSpec(AttributeType.BODY, key, value)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$vin", "VF3ABCDE0FG123456"),
        ("$VIN", "VF3ABCDE0FG123456"),
        ("$Vin", "VF3ABCDE0FG123456"),
        ("$callbackid", "c0ffee"),
        ("$CallbackID", "c0ffee"),
        ("$remotetype", "Horn"),
        ("$FLEETID", "fleet-7"),
        ("Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz"),
        ("", ""),
        ("fleet/$fleetID/car/$vin", "fleet/fleet-7/car/VF3ABCDE0FG123456"),
        ("$vin-A", "VF3ABCDE0FG123456-A"),
        ("${vin}A", "VF3ABCDE0FG123456A"),
        ("${RemoteType}s", "Horns"),
        ("price: 5$$", "price: 5$"),
        ("$$vin", "$vin"),
        ("$$$vin", "$VF3ABCDE0FG123456"),
    ],
)
def test_render_substitutes_variables_case_insensitively(template: str, expected: str) -> None:
    validate_value(template, "value")
    assert render(template, VARIABLES) == expected


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("$vn", "$vn"),
        ("Bearer $token", "$token"),
        ("$vin_suffix", "$vin_suffix"),
        ("${monitorID}", "$monitorID"),
        ("$CallbackLabel", "$CallbackLabel"),
        ("$vid", "$vid"),
    ],
)
def test_unknown_variable_is_refused_naming_it(template: str, named: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        validate_value(template, "callback.webhook.attributes[2].value")
    assert caught.value.error is ErrorCode.UNKNOWN_VARIABLE
    assert caught.value.message.startswith("callback.webhook.attributes[2].value: ")
    assert named in caught.value.message
    assert "$$" in caught.value.message


@pytest.mark.parametrize("template", ["5$", "$ vin", "$5", "${vin", "${}", "a$-b"])
def test_stray_dollar_is_refused_with_how_to_escape(template: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        validate_value(template, "v")
    assert caught.value.error is ErrorCode.UNKNOWN_VARIABLE
    assert "write $$ for a literal $" in caught.value.message


def test_render_without_a_needed_variable_is_a_caller_bug() -> None:
    with pytest.raises(KeyError):
        render("$fleetID", {"vin": "V"})


def test_variables_in_lists_canonical_names() -> None:
    assert variables_in("$VIN and ${callbackid} and $$fleetID") == {"vin", "callbackID"}


@pytest.mark.parametrize(
    ("template", "varies"),
    [
        ("$vin", True),
        ("car-${VIN}", True),
        ("$remoteType", True),
        ("$callbackID", False),
        ("$fleetID", False),
        ("literal", False),
        ("$$vin", False),
    ],
)
def test_varies_per_event(template: str, varies: bool) -> None:
    assert varies_per_event(template) is varies


@pytest.mark.parametrize(
    ("attributes", "allowed"),
    [
        ([], True),
        ([header("Authorization", "Basic abc"), query("fleet", "$fleetID")], True),
        ([body("vin", "$vin"), body("type", "$remoteType")], True),
        ([header("X-Callback", "$callbackID")], True),
        ([query("vin", "$vin")], False),
        ([header("X-Vehicle_Id", "$vin")], False),
        ([header("X-Type", "type-$RemoteType")], False),
        ([body("vin", "$vin"), query("fleet", "$fleetID"), header("X-V", "${vin}")], False),
    ],
)
def test_batching_allowed(attributes: list[AttributeSpec], allowed: bool) -> None:
    assert batching_allowed(attributes) is allowed


def test_render_request_parts_places_each_attribute() -> None:
    rendered = render_request_parts(
        [
            header("Authorization", "Bearer s3cr3t"),
            query("vin", "$vin"),
            body("type", "$remoteType"),
            query("vin", "again-$vin"),
            body("fleet", "$fleetID"),
            header("X-Vehicle_Id", "$VIN"),
        ],
        VARIABLES,
    )
    assert rendered.headers == {
        "Authorization": "Bearer s3cr3t",
        "X-Vehicle_Id": "VF3ABCDE0FG123456",
    }
    assert rendered.query == [("vin", "VF3ABCDE0FG123456"), ("vin", "again-VF3ABCDE0FG123456")]
    assert rendered.body == [{"key": "type", "value": "Horn"}, {"key": "fleet", "value": "fleet-7"}]


def test_rendered_header_cannot_be_split_by_a_variable_value() -> None:
    rendered = render_request_parts(
        [header("X-Fleet", "$fleetID"), query("fleet", "$fleetID")],
        {**VARIABLES, "fleetID": "f1\r\nX-Evil: 1"},
    )
    assert rendered.headers == {"X-Fleet": "f1X-Evil: 1"}
    assert rendered.query == [("fleet", "f1\r\nX-Evil: 1")]


@pytest.mark.parametrize(
    "key",
    ["X Vehicle", "X-Vehicle:", "Acc\u00e9s", "(x)", "a/b"],
)
def test_header_key_must_be_an_http_token(key: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        check_attribute(header(key, "v"), "callback.webhook.attributes[0]")
    assert caught.value.error is ErrorCode.INVALID_BODY
    assert caught.value.message.startswith("callback.webhook.attributes[0].key: ")


@pytest.mark.parametrize(
    "key",
    [
        "Content-Type",
        "content-length",
        "HOST",
        "Transfer-Encoding",
        "Connection",
        "webhook-id",
        "Webhook-Timestamp",
        "webhook-signature",
        "Upgrade",
    ],
)
def test_reserved_header_is_refused(key: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        check_attribute(header(key, "v"), "a[1]")
    assert "a[1].key" in caught.value.message
    assert key in caught.value.message


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "nul\x00", "caf\u00e9"])
def test_header_value_must_be_one_printable_line(value: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        check_attribute(header("X-A", value), "a[0]")
    assert caught.value.message.startswith("a[0].value: ")


def test_non_header_attributes_may_carry_any_text() -> None:
    check_attribute(query("q", "a b\nc"), "a[0]")
    check_attribute(body("Content-Type", "caf\u00e9 \r\n"), "a[1]")


def test_check_attribute_checks_variables_of_every_type() -> None:
    with pytest.raises(KeyfobError) as caught:
        check_attribute(body("k", "$nope"), "a[3]")
    assert caught.value.error is ErrorCode.UNKNOWN_VARIABLE
    assert caught.value.message.startswith("a[3].value: ")
