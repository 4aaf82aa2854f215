"""The sign-in flow's state between pages, carried by the browser and signed by the server.

The login page and the consent page each post back a *flow token*: what the authorization
request asked (client, redirect URI, scopes, state, PKCE challenge), the step it is at, the
user once they have signed in, an expiry, and a digest of the browser's CSRF cookie. It is
MAC'd with a key every API process derives from the shared signing keys, so any process can
finish a flow another one started, and nothing about it is kept in memory or in the database.

A forged or altered token fails the MAC; a token lifted from one browser fails in another,
because that browser does not hold the cookie it is bound to (which also stops login CSRF:
an attacker's own flow cannot be completed in a victim's browser).

    GET  authorize  ─► cookie kf_oauth (random)  + page(flow{step=login,  csrf=H(cookie)})
    POST login      ─► checks MAC, expiry, step, H(cookie)  ─► page(flow{step=consent, user})
    POST consent    ─► same checks                          ─► 302 redirect_uri?code=...
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from keyfob.auth import sealed

LOGIN_TTL = timedelta(minutes=15)
"""Time to read the page and type a password."""
CONSENT_TTL = timedelta(minutes=5)
_LABEL = b"keyfob oauth sign-in flow v1"


@dataclass(frozen=True, slots=True)
class Flow:
    step: str
    """``login`` or ``consent``."""
    client_id: str
    redirect_uri: str
    realm: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    locale: str | None
    csrf: str
    """A digest of the browser's CSRF cookie: the flow only completes in that browser."""
    expires: int
    """Unix seconds."""
    nonce: str | None = None
    user_id: str | None = None
    login: str | None = None


def new_cookie() -> str:
    return secrets.token_urlsafe(32)


def cookie_digest(cookie: str) -> str:
    return sealed.b64(hashlib.sha256(cookie.encode()).digest())


def derive_key(secret: bytes) -> bytes:
    """A MAC key of its own from a shared secret, so the secret itself never signs flows."""
    return sealed.derive_key(secret, _LABEL)


class FlowSealer:
    """Seals flows with the first key and opens them with any (keys rotate)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._sealer = sealed.Sealer(keys, what="flow")

    def seal(self, flow: Flow) -> str:
        return self._sealer.seal(asdict(flow))

    def open(self, token: str, *, cookie: str | None, step: str, now: datetime) -> Flow | None:
        """The flow, or ``None`` if forged, altered, expired, at another step or not this
        browser's."""
        if not cookie:
            return None
        data = self._sealer.open(token)
        if data is None:
            return None
        try:
            data["scopes"] = tuple(data["scopes"])
            flow = Flow(**data)
        except (ValueError, TypeError, KeyError):
            return None
        if flow.step != step or flow.expires < now.timestamp():
            return None
        if not hmac.compare_digest(flow.csrf, cookie_digest(cookie)):
            return None
        return flow
