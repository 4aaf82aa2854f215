"""The console's session: a signed cookie, so any API process can read it and none stores it.

The cookie carries who signed in (the partner's id, or nobody yet), a CSRF token and an
expiry, MAC'd with a key derived from the shared signing keys (``auth.sealed``, as ``auth.flow``
seals the sign-in pages' state, with a label of its own). Every form of the console posts the
CSRF token back; a post whose token is not the cookie's is refused, and since the cookie is
``HttpOnly`` and ``SameSite=Strict`` another site can neither read the token nor make the
browser send it.

An end user's session (``user``) names the OAuth grant their sign-in started, and while the
sign-in is under way (``pending``) the ``state`` and PKCE verifier the console sent them off
with; a cookie is signed, not encrypted, so the verifier is readable by that browser alone,
which is the party PKCE protects.

Signing in replaces the anonymous session with a new one (a new CSRF token too), so a
session planted before sign-in is worth nothing after it; signing out replaces it again.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from keyfob.auth import sealed

COOKIE = "kf_console"
LIFETIME = timedelta(hours=8)
"""A working day; then the console asks for the password again."""
_LABEL = b"keyfob console session v1"


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    expires: int
    """Unix seconds."""
    partner_id: str | None = None
    login: str | None = None
    user: UserSignIn | None = None
    """An end user signed in through keyfob's OAuth login (the user face)."""
    pending: PendingSignIn | None = None
    """An end user's sign-in under way: what the callback must see again."""

    @property
    def signed_in(self) -> bool:
        return self.partner_id is not None or self.user is not None


@dataclass(frozen=True, slots=True)
class UserSignIn:
    user_id: str
    login: str
    client_id: str
    realm: str
    grant_id: str
    """The OAuth grant the sign-in started; revoking it signs the console out."""
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    state: str
    verifier: str
    """The PKCE verifier; only its S256 digest left the server."""
    realm: str


def new_session(
    *,
    now: datetime,
    partner_id: str | None = None,
    login: str | None = None,
    user: UserSignIn | None = None,
    pending: PendingSignIn | None = None,
) -> Session:
    """A fresh session with a fresh CSRF token."""
    expires = int((now + LIFETIME).timestamp())
    return Session(secrets.token_urlsafe(24), expires, partner_id, login, user, pending)


def derive_key(secret: bytes) -> bytes:
    """A MAC key of the console's own from a shared secret."""
    return sealed.derive_key(secret, _LABEL)


class SessionSealer:
    """Seals with the first key and opens with any of them (the shared keys rotate)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._sealer = sealed.Sealer(keys, what="session")

    def seal(self, session: Session) -> str:
        return self._sealer.seal(asdict(session))

    def open(self, token: str | None, *, now: datetime) -> Session | None:
        """The session, or ``None`` when absent, forged, altered or expired."""
        if not token:
            return None
        data = self._sealer.open(token)
        if data is None:
            return None
        try:
            if data.get("user") is not None:
                data["user"] = UserSignIn(
                    **{**data["user"], "scopes": tuple(data["user"]["scopes"])}
                )
            if data.get("pending") is not None:
                data["pending"] = PendingSignIn(**data["pending"])
            session = Session(**data)
        except (ValueError, TypeError, KeyError):
            return None
        if session.expires < now.timestamp():
            return None
        return session


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf, sent)
