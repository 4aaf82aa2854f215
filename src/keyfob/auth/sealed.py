"""Signed tokens a browser carries for the server: base64url JSON and an HMAC-SHA256 of it.

The sign-in flow of ``/am/oauth2`` (``auth.flow``) and the console's session cookie both keep
their state in the browser rather than on any one API process. Each MACs with a key of its own,
derived from the shared signing keys with a label of its own, so one kind of token is never
accepted as the other and the shared secrets themselves never sign anything. A token is sealed
with the first key and opened with any of them, since the shared keys rotate. A token is signed,
not encrypted: the browser holding it can read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import orjson


def derive_key(secret: bytes, label: bytes) -> bytes:
    """The MAC key of one kind of token (``label``) from a shared secret."""
    return hmac.new(secret, label, hashlib.sha256).digest()


def b64(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealer:
    """Seals with the first key and opens with any of them."""

    def __init__(self, keys: Sequence[bytes], *, what: str) -> None:
        if not keys:
            raise ValueError(f"a {what} sealer needs at least one key")
        self._keys = tuple(keys)

    def seal(self, data: dict[str, Any]) -> str:
        body = b64(orjson.dumps(data))
        return f"{body}.{_mac(self._keys[0], body)}"

    def open(self, token: str) -> dict[str, Any] | None:
        """The token's JSON object, or ``None`` when malformed, forged or altered."""
        body, _, mac = token.partition(".")
        if not body or not mac:
            return None
        if not any(hmac.compare_digest(mac, _mac(key, body)) for key in self._keys):
            return None
        try:
            data = orjson.loads(unb64(body))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def _mac(key: bytes, body: str) -> str:
    return b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
