"""Standard Webhooks signatures, so a receiver can tell keyfob's notifications from forgeries.

Each callback holds one or more secrets; during a rotation both the old and the new one are
active, and every request then carries one signature per secret so that receivers holding either
keep verifying. ``verify`` is the receiver's side, used by ``keyfob listen``.

    webhook-id:         the message id (the same on every retry of one message)
    webhook-timestamp:  integer seconds since the epoch
    webhook-signature:  "v1,<b64 sig>[ v1,<b64 sig> ...]"
                        sig = HMAC-SHA256(secret bytes, f"{id}.{timestamp}.{body}")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_source
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from keyfob.errors import ErrorCode, KeyfobError

PREFIX = "whsec_"
KEY_BYTES = 32
_MIN_KEY_BYTES = 24
_MAX_KEY_BYTES = 64
TOLERANCE = timedelta(minutes=5)


class InvalidSignature(Exception):
    """A received request is not signed by the expected secret; the message says why."""


def new_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes."""
    return PREFIX + base64.b64encode(random_source.token_bytes(KEY_BYTES)).decode("ascii")


@lru_cache(maxsize=1024)
def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret; a malformed secret is a clear error.

    Remembered: every request is signed with the same few secrets.
    """
    if not secret.startswith(PREFIX):
        raise KeyfobError(ErrorCode.BAD_REQUEST, f"secret must start with {PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise KeyfobError(
            ErrorCode.BAD_REQUEST, f"secret must be {PREFIX!r} followed by base64"
        ) from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise KeyfobError(
            ErrorCode.BAD_REQUEST,
            f"secret must hold {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} bytes, got {len(key)}",
        )
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(secret_key(secret), signed, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers to add to a request, with one signature per active secret."""
    if not secrets:
        raise KeyfobError(ErrorCode.INTERNAL, "secrets must hold at least one signing secret")
    if not msg_id or any(c in msg_id for c in "\r\n"):
        raise KeyfobError(ErrorCode.INTERNAL, "msg_id must be a non-empty single-line string")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Raise ``InvalidSignature`` unless ``body`` was signed with ``secret`` close to ``now``."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = _header(lowered, "webhook-id")
    stamp = _header(lowered, "webhook-timestamp")
    offered = _header(lowered, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature(f"header webhook-timestamp is not an integer: {stamp!r}") from None
    skew = abs(now.timestamp() - timestamp)
    if skew > tolerance.total_seconds():
        raise InvalidSignature(
            f"header webhook-timestamp is {skew:.0f} s away from now (tolerance "
            f"{tolerance.total_seconds():.0f} s)"
        )
    expected = signature(secret, msg_id, timestamp, body).encode("ascii")
    candidates = (c.encode("utf-8", "replace") for c in offered.split(" "))
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("no signature in webhook-signature matches the secret")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise InvalidSignature(f"header {name} is missing")
    return value
