"""PKCE (RFC 7636), S256 only.

``plain`` is refused (at the authorization request, ``auth.authorize``): it protects nothing
once the challenge is seen, every known client of this API sends S256, and OAuth 2.1 drops
it. A verifier is 43 to 128 characters of ``[A-Za-z0-9-._~]``; the challenge is its SHA-256,
base64url without padding (43 characters).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifies(challenge: str, verifier: str | None) -> bool:
    """Whether ``verifier`` is well formed and hashes to ``challenge`` (constant time)."""
    if verifier is None or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def new_verifier() -> str:
    """A fresh verifier (for clients and tests): 64 characters, 384 random bits."""
    return secrets.token_urlsafe(48)
