"""Signatures checked against the reference Standard Webhooks implementation."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from standardwebhooks.webhooks import WebhookVerificationError

from keyfob.errors import KeyfobError
from keyfob.notifications.signing import InvalidSignature, new_secret, sign, verify

BODY = b'{"callbackId":"cb","attributes":[],"events":[]}'
MSG = "0123456789abcdef0123456789abcdef"


def now_seconds() -> int:
    return int(time.time())


def test_new_secrets_are_whsec_base64_and_unique() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32


def test_the_reference_library_accepts_our_signature() -> None:
    secret = new_secret()
    headers = sign([secret], MSG, now_seconds(), BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG
    standardwebhooks.Webhook(secret).verify(BODY, headers)


def test_our_signature_is_the_reference_signature() -> None:
    secret = new_secret()
    stamp = now_seconds()
    expected = standardwebhooks.Webhook(secret).sign(
        MSG, datetime.fromtimestamp(stamp, UTC), BODY.decode()
    )
    assert sign([secret], MSG, stamp, BODY)["webhook-signature"] == expected


def test_during_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = sign([new, old], MSG, now_seconds(), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    standardwebhooks.Webhook(old).verify(BODY, headers)
    standardwebhooks.Webhook(new).verify(BODY, headers)


def test_a_wrong_secret_or_a_tampered_body_fails_with_the_reference_library() -> None:
    secret = new_secret()
    headers = sign([secret], MSG, now_seconds(), BODY)
    with pytest.raises(WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(BODY.replace(b"cb", b"cc"), headers)


def test_our_verify_accepts_what_the_reference_library_signs() -> None:
    secret = new_secret()
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    reference = standardwebhooks.Webhook(secret).sign(MSG, moment, BODY.decode())
    headers = {
        "Webhook-Id": MSG,
        "Webhook-Timestamp": str(int(moment.timestamp())),
        "Webhook-Signature": f"v1,bm9wZQ== {reference}",
    }
    verify(secret, headers, BODY, now=moment + timedelta(seconds=30))


def test_our_verify_refuses_tampering_staleness_and_missing_headers() -> None:
    secret = new_secret()
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    headers = sign([secret], MSG, int(moment.timestamp()), BODY)
    with pytest.raises(InvalidSignature, match="no signature"):
        verify(secret, headers, BODY + b" ", now=moment)
    with pytest.raises(InvalidSignature, match="no signature"):
        verify(new_secret(), headers, BODY, now=moment)
    with pytest.raises(InvalidSignature, match="webhook-timestamp"):
        verify(secret, headers, BODY, now=moment + timedelta(minutes=6))
    with pytest.raises(InvalidSignature, match="webhook-timestamp"):
        verify(secret, headers, BODY, now=moment - timedelta(minutes=6))
    verify(secret, headers, BODY, now=moment + timedelta(minutes=4))
    without = {k: v for k, v in headers.items() if k != "webhook-signature"}
    with pytest.raises(InvalidSignature, match="webhook-signature is missing"):
        verify(secret, without, BODY, now=moment)
    garbled = {**headers, "webhook-timestamp": "soon"}
    with pytest.raises(InvalidSignature, match="not an integer"):
        verify(secret, garbled, BODY, now=moment)


@pytest.mark.parametrize(
    "secret",
    ["abc", "whsec_***", "whsec_" + base64.b64encode(b"short").decode()],
    ids=["no-prefix", "not-base64", "too-short"],
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(KeyfobError, match="secret"):
        sign([secret], MSG, now_seconds(), BODY)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(KeyfobError, match="secrets"):
        sign([], MSG, now_seconds(), BODY)
