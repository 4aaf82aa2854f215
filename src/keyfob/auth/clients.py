"""OAuth clients: the apps end users sign in through, and how a client proves who it is.

A confidential client has a secret, shown once at creation and stored as a SHA-256 digest:
it is 256 random bits, so a slow hash would add nothing but cost (unlike a person's
password). A public client (a mobile or desktop app that cannot keep a secret) has none and
must use PKCE. Redirect URIs are matched exactly as registered; custom schemes such as
``mymap://oauth2redirect/fr`` are allowed, fragments and script-like schemes are not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.oauth_errors import OAuthError, invalid_client
from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import ALL_SCOPES, scope_text
from keyfob.auth.user_models import oauth_clients
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.text import shown

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_REFUSED_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob"})


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    """What the client may be granted (``auth.scopes.grant_scopes``)."""
    realm: str
    """Canonical realm name: tokens issued to this client are valid only there."""
    first_party: bool
    is_public: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewClient:
    client: OAuthClient
    secret: str | None
    """Shown once; ``None`` for a public client."""


def _client(row: Row[Any]) -> OAuthClient:
    return OAuthClient(
        client_id=row.client_id,
        name=row.name,
        redirect_uris=tuple(row.redirect_uris),
        scopes=frozenset(row.scopes.split()),
        realm=row.realm,
        first_party=row.first_party,
        is_public=row.secret_hash is None,
        created_at=row.created_at,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_redirect_uri(uri: str) -> str:
    """``uri`` if it may be registered, else a 400 saying why."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme) or len(uri) > 2000:
        raise KeyfobError(
            ErrorCode.INVALID_BODY, f"redirect URI {shown(uri)} is not an absolute URI"
        )
    if scheme in _REFUSED_SCHEMES:
        raise KeyfobError(ErrorCode.INVALID_BODY, f"redirect URI scheme {scheme!r} is refused")
    if "#" in uri:
        raise KeyfobError(ErrorCode.INVALID_BODY, "a redirect URI has no fragment (RFC 6749)")
    if scheme in ("http", "https") and not parts.hostname:
        raise KeyfobError(ErrorCode.INVALID_BODY, f"redirect URI {shown(uri)} has no host")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise KeyfobError(ErrorCode.INVALID_BODY, "a redirect URI holds no spaces or controls")
    return uri


async def create_client(
    conn: AsyncConnection,
    *,
    name: str,
    redirect_uris: Iterable[str],
    scopes: Iterable[str],
    realm: str,
    now: datetime,
    first_party: bool = False,
    public: bool = False,
    client_id: str | None = None,
) -> NewClient:
    """Register a client; its secret (unless public) is in the answer and nowhere else."""
    uris = tuple(dict.fromkeys(check_redirect_uri(u) for u in redirect_uris))
    if not uris:
        raise KeyfobError(ErrorCode.INVALID_BODY, "a client needs at least one redirect URI")
    allowed = frozenset(scopes)
    unknown = allowed - ALL_SCOPES
    if unknown:
        raise KeyfobError(ErrorCode.INVALID_BODY, f"unknown scopes: {scope_text(unknown)}")
    found = find_realm(realm)
    if found is None:
        raise KeyfobError(ErrorCode.UNKNOWN_REALM, f"no realm is named {shown(realm)}")
    chosen = client_id or str(uuid.uuid4())
    if not chosen or len(chosen) > 128 or not chosen.isprintable() or " " in chosen:
        raise KeyfobError(ErrorCode.INVALID_BODY, "client_id: 1 to 128 printable characters")
    if await get_client(conn, chosen) is not None:
        raise KeyfobError(ErrorCode.ALREADY_EXISTS, f"an OAuth client {chosen!r} exists")
    secret = None if public else secrets.token_urlsafe(32)
    await conn.execute(
        oauth_clients.insert().values(
            client_id=chosen,
            secret_hash=None if secret is None else _digest(secret),
            name=name,
            redirect_uris=list(uris),
            scopes=scope_text(allowed),
            realm=found.name,
            first_party=first_party,
            created_at=now,
        )
    )
    client = OAuthClient(chosen, name, uris, allowed, found.name, first_party, secret is None, now)
    return NewClient(client, secret)


async def get_client(conn: AsyncConnection, client_id: str) -> OAuthClient | None:
    query = select(oauth_clients).where(oauth_clients.c.client_id == client_id)
    row = (await conn.execute(query)).first()
    return None if row is None else _client(row)


async def list_clients(conn: AsyncConnection) -> list[OAuthClient]:
    query = select(oauth_clients).order_by(oauth_clients.c.created_at, oauth_clients.c.client_id)
    return [_client(r) for r in (await conn.execute(query)).all()]


async def authenticate_client(
    conn: AsyncConnection, *, client_id: str | None, secret: str | None
) -> OAuthClient:
    """The client these credentials (HTTP Basic or form fields, as the caller read them) name.

    A confidential client must give its secret; a public client gives none. Anything else is
    ``invalid_client`` (401), without saying which part was wrong.
    """
    if not client_id:
        raise OAuthError("invalid_request", "the client_id is missing")
    row = (
        await conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id))
    ).first()
    expected = _DUMMY if row is None or row.secret_hash is None else row.secret_hash
    matches = hmac.compare_digest(_digest(secret or ""), expected)
    if row is None:
        raise invalid_client()
    if row.secret_hash is None:
        if secret:
            raise invalid_client("a public client has no secret")
        return _client(row)
    if not secret or not matches:
        raise invalid_client()
    return _client(row)


_DUMMY = _digest(secrets.token_urlsafe(32))
