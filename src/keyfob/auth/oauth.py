"""The authorization server's grants: codes, their exchange, refresh, revocation (decision 29).

Functions take the connection first and never commit. An ``OAuthError`` they raise leaves
the unit of work meant to be committed, not rolled back: a code or refresh token presented a
second time revokes the grant it started before the error is raised (RFC 6749 §4.1.2 and
§10.4; the OAuth security BCP's reuse detection), so catch it inside the transaction block.

    issue_code ──► code (36-char UUID, 60 s, single use, PKCE challenge kept)
                      │ exchange_code: client, redirect_uri (exact), PKCE S256, expiry, once
                      ▼
                    grant ──► access token (JWT, sid = grant) + refresh token + ID token
                      │ refresh: the refresh token is rotated; the old one is spent
                      │ revoke(refresh token) / code or refresh token reused
                      ▼
                    grant revoked ──► its refresh tokens refused, its access tokens refused
                                      by every process within revocation_poll_s
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth import pkce
from keyfob.auth.authority import UserAuth
from keyfob.auth.clients import OAuthClient
from keyfob.auth.oauth_errors import OAuthError, invalid_grant
from keyfob.auth.realms import Realm, find_realm
from keyfob.auth.revocations import GRANT, TOKEN, record_revocation
from keyfob.auth.scopes import grant_scopes, scope_text
from keyfob.auth.tokens import mint_access_token, mint_id_token, peek, read_access_token
from keyfob.auth.user_models import authorization_codes, oauth_grants, refresh_tokens
from keyfob.auth.users import get_user
from keyfob.errors import InvalidToken
from keyfob.kit.clock import as_utc
from keyfob.kit.ids import new_id
from keyfob.kit.text import shown


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    scope: str
    """What the code grants, space-separated (some clients read ``scope`` on the redirect)."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str
    id_token: str | None
    expires_in: int
    scope: str
    grant_id: str

    def as_json(self) -> dict[str, Any]:
        """The token endpoint's answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3)."""
        answer: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }
        if self.id_token is not None:
            answer["id_token"] = self.id_token
        return answer


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_code(
    conn: AsyncConnection,
    *,
    auth: UserAuth,
    client: OAuthClient,
    user_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    code_challenge: str | None,
    now: datetime,
    nonce: str | None = None,
) -> IssuedCode:
    """A code for a user who signed in and consented. ``scopes`` are as asked; what is
    granted follows ``auth.scopes.grant_scopes`` (``invalid_scope`` when nothing is left).
    The request itself was judged by ``auth.authorize.judge``."""
    granted = grant_scopes(scopes, allowed=client.scopes, first_party=client.first_party)
    code = str(uuid.uuid4())
    await conn.execute(
        authorization_codes.delete().where(
            authorization_codes.c.expires_at < now - timedelta(days=1)
        )
    )
    await conn.execute(
        authorization_codes.insert().values(
            code_hash=_digest(code),
            client_id=client.client_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            scope=scope_text(granted),
            realm=client.realm,
            code_challenge=code_challenge,
            nonce=nonce,
            created_at=now,
            expires_at=now + timedelta(seconds=auth.policy.code_ttl_s),
        )
    )
    return IssuedCode(code, scope_text(granted))


async def exchange_code(
    conn: AsyncConnection,
    *,
    auth: UserAuth,
    client: OAuthClient,
    code: str | None,
    redirect_uri: str | None,
    code_verifier: str | None,
    now: datetime,
) -> TokenSet:
    """Tokens for an authorization code (``grant_type=authorization_code``), for a client
    already authenticated (``auth.clients.authenticate_client``)."""
    if not code:
        raise OAuthError("invalid_request", "the code parameter is missing")
    if not redirect_uri:
        raise OAuthError("invalid_request", "the redirect_uri parameter is missing")
    query = select(authorization_codes).where(authorization_codes.c.code_hash == _digest(code))
    row = (await conn.execute(query)).first()
    if row is None or row.client_id != client.client_id:
        raise invalid_grant("the code is unknown or was issued to another client")
    if row.used_at is not None:
        if row.grant_id is not None:
            await revoke_grant(conn, auth=auth, grant_id=row.grant_id, now=now)
        raise invalid_grant("the code was already used; the tokens it gave are revoked")
    if as_utc(row.expires_at) <= now:
        raise invalid_grant("the code has expired")
    if redirect_uri != row.redirect_uri:
        raise invalid_grant("redirect_uri differs from the authorization request's")
    if row.code_challenge is not None:
        if not pkce.verifies(row.code_challenge, code_verifier):
            raise invalid_grant("the code_verifier does not match the code_challenge")
    elif code_verifier is not None:
        raise invalid_grant("a code_verifier for a code issued without a code_challenge")
    spent = await conn.execute(
        update(authorization_codes)
        .where(authorization_codes.c.code_hash == row.code_hash)
        .where(authorization_codes.c.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        raise invalid_grant("the code was already used")
    tokens = await issue_tokens(
        conn,
        auth=auth,
        client=client,
        user_id=row.user_id,
        scopes=frozenset(row.scope.split()),
        now=now,
        nonce=row.nonce,
    )
    await conn.execute(
        update(authorization_codes)
        .where(authorization_codes.c.code_hash == row.code_hash)
        .values(grant_id=tokens.grant_id)
    )
    return tokens


async def issue_tokens(
    conn: AsyncConnection,
    *,
    auth: UserAuth,
    client: OAuthClient,
    user_id: str,
    scopes: frozenset[str],
    now: datetime,
    nonce: str | None = None,
) -> TokenSet:
    """Start a grant and issue its first tokens. ``exchange_code`` calls it; trusted tooling
    and tests may too (scopes are taken as given, already granted)."""
    grant_id = new_id()
    await conn.execute(
        oauth_grants.insert().values(
            id=grant_id,
            client_id=client.client_id,
            user_id=user_id,
            scope=scope_text(scopes),
            realm=client.realm,
            created_at=now,
        )
    )
    return await _tokens(
        conn,
        auth=auth,
        grant_id=grant_id,
        client_id=client.client_id,
        user_id=user_id,
        realm=client.realm,
        scopes=scopes,
        now=now,
        nonce=nonce,
    )


async def _tokens(
    conn: AsyncConnection,
    *,
    auth: UserAuth,
    grant_id: str,
    client_id: str,
    user_id: str,
    realm: str,
    scopes: frozenset[str],
    now: datetime,
    nonce: str | None = None,
) -> TokenSet:
    policy = auth.policy
    key = await auth.keys.signing_key(conn, now=now)
    access, _ = mint_access_token(
        key,
        policy=policy,
        user_id=user_id,
        client_id=client_id,
        realm=realm,
        scopes=scopes,
        grant_id=grant_id,
        now=now,
    )
    refresh = secrets.token_urlsafe(32)
    await conn.execute(
        refresh_tokens.insert().values(
            token_hash=_digest(refresh),
            grant_id=grant_id,
            created_at=now,
            expires_at=now + timedelta(seconds=policy.refresh_ttl_s),
        )
    )
    id_token = None
    if "openid" in scopes:
        user = await get_user(conn, user_id)
        profile = None
        if user is not None and "profile" in scopes:
            names = {"given_name": user.first_name, "family_name": user.last_name}
            profile = {"email": user.login, **{k: v for k, v in names.items() if v}}
        id_token = mint_id_token(
            key,
            policy=policy,
            user_id=user_id,
            client_id=client_id,
            now=now,
            nonce=nonce,
            profile=profile,
        )
    return TokenSet(access, refresh, id_token, policy.access_ttl_s, scope_text(scopes), grant_id)


async def refresh(
    conn: AsyncConnection,
    *,
    auth: UserAuth,
    client: OAuthClient,
    refresh_token: str | None,
    now: datetime,
    scope: Iterable[str] = (),
    realm: str | None = None,
) -> TokenSet:
    """New tokens for a refresh token (``grant_type=refresh_token``); the refresh token is
    rotated. A narrower ``scope`` is honoured for the new access token; ``realm``, when
    given, must be the grant's (either spelling)."""
    if not refresh_token:
        raise OAuthError("invalid_request", "the refresh_token parameter is missing")
    query = (
        select(refresh_tokens, oauth_grants)
        .join(oauth_grants, oauth_grants.c.id == refresh_tokens.c.grant_id)
        .where(refresh_tokens.c.token_hash == _digest(refresh_token))
    )
    row = (await conn.execute(query)).first()
    if row is None or row.client_id != client.client_id:
        raise invalid_grant("the refresh token is unknown or was issued to another client")
    if row.revoked_at is not None:
        raise invalid_grant("the refresh token was revoked")
    if row.rotated_at is not None:
        await revoke_grant(conn, auth=auth, grant_id=row.grant_id, now=now)
        raise invalid_grant("the refresh token was already used; its grant is revoked")
    if as_utc(row.expires_at) <= now:
        raise invalid_grant("the refresh token has expired")
    if realm is not None:
        found = find_realm(realm)
        if found is None:
            raise OAuthError("invalid_request", f"no realm is named {shown(realm)}")
        if found.name != row.realm:
            raise invalid_grant("the refresh token was not issued for this realm")
    granted = frozenset(row.scope.split())
    asked = frozenset(scope)
    if asked - granted:
        raise OAuthError("invalid_scope", "a refresh cannot widen the grant's scope")
    spent = await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == row.token_hash)
        .where(refresh_tokens.c.rotated_at.is_(None))
        .values(rotated_at=now)
    )
    if spent.rowcount != 1:
        raise invalid_grant("the refresh token was already used")
    await conn.execute(
        refresh_tokens.delete().where(
            refresh_tokens.c.grant_id == row.grant_id,
            refresh_tokens.c.expires_at < now,
        )
    )
    return await _tokens(
        conn,
        auth=auth,
        grant_id=row.grant_id,
        client_id=row.client_id,
        user_id=row.user_id,
        realm=row.realm,
        scopes=asked or granted,
        now=now,
    )


async def revoke_grant(
    conn: AsyncConnection, *, auth: UserAuth, grant_id: str, now: datetime
) -> None:
    """End a grant: its refresh tokens are refused at once, its access tokens by every
    process within ``revocation_poll_s``."""
    await conn.execute(
        update(oauth_grants)
        .where(oauth_grants.c.id == grant_id, oauth_grants.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    until = now + timedelta(seconds=auth.policy.access_ttl_s + 60)
    await record_revocation(conn, kind=GRANT, value=grant_id, expires_at=until, now=now)
    auth.revocations.add(GRANT, grant_id, until)


async def revoke(
    conn: AsyncConnection,
    *,
    auth: UserAuth,
    client: OAuthClient,
    token: str | None,
    now: datetime,
    token_type_hint: str | None = None,
    realm: str | None = None,
) -> None:
    """Revoke a refresh token (and its grant's access tokens) or one access token (RFC 7009).

    An unknown, expired or malformed token is no error (the RFC answers 200 anyway); one
    issued to another client is ``unauthorized_client``.
    """
    if not token:
        raise OAuthError("invalid_request", "the token parameter is missing")
    if token_type_hint not in (None, "access_token", "refresh_token"):
        raise OAuthError("unsupported_token_type", f"unknown token_type_hint {token_type_hint}")
    wanted = find_realm(realm) if realm is not None else None
    if realm is not None and wanted is None:
        raise OAuthError("invalid_request", f"no realm is named {shown(realm)}")
    query = (
        select(oauth_grants.c.id, oauth_grants.c.client_id, oauth_grants.c.realm)
        .join(refresh_tokens, oauth_grants.c.id == refresh_tokens.c.grant_id)
        .where(refresh_tokens.c.token_hash == _digest(token))
    )
    row = (await conn.execute(query)).first()
    if row is not None:
        _owned(client, row.client_id, row.realm, wanted)
        await revoke_grant(conn, auth=auth, grant_id=row.id, now=now)
        return
    try:
        header, _ = peek(token)
        key = await _verification_key(conn, auth, header.get("kid"), now)
        if key is None:
            return
        claims = read_access_token(token, key, issuer=auth.policy.issuer, now=now.timestamp())
    except InvalidToken:
        return
    _owned(client, claims.client_id, claims.realm, wanted)
    assert claims.jti is not None
    until = datetime.fromtimestamp(claims.expires_at, now.tzinfo)
    await record_revocation(conn, kind=TOKEN, value=claims.jti, expires_at=until, now=now)
    auth.revocations.add(TOKEN, claims.jti, until)


def _owned(client: OAuthClient, client_id: str, realm: str, wanted: Realm | None) -> None:
    if client_id != client.client_id:
        raise OAuthError("unauthorized_client", "the token was issued to another client")
    if wanted is not None and wanted.name != realm:
        raise OAuthError("invalid_request", "the token was not issued for this realm")


async def _verification_key(
    conn: AsyncConnection, auth: UserAuth, kid: object, now: datetime
) -> ECKey | None:
    if not isinstance(kid, str):
        return None
    key = auth.keys.trusted(kid, now=now)
    if key is None:
        await auth.keys.load(conn)
        key = auth.keys.trusted(kid, now=now)
    return key
