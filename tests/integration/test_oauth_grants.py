"""The authorization server's services on both engines: codes, exchange, refresh, revoke, keys.

The HTTP endpoints under ``/am/oauth2`` call exactly these; what they add is parsing and
rendering. Access tokens are checked through ``UserAuth.principal``, the gate's own check.
"""

from __future__ import annotations

import pytest

from conftest import make_settings
from keyfob.auth.clients import authenticate_client, create_client
from keyfob.auth.oauth import (
    TokenSet,
    exchange_code,
    issue_code,
    refresh,
    revoke,
)
from keyfob.auth.oauth_errors import OAuthError
from keyfob.auth.pkce import new_verifier, s256
from keyfob.auth.principal import UserPrincipal
from keyfob.auth.tokens import peek
from keyfob.errors import InvalidToken
from keyfob.kit.clock import FakeClock
from keyfob.runtime.context import AppContext, build_context
from keyfob.store.engine import Database
from user_support import REDIRECT_URI, UserLogin, make_user


@pytest.fixture
def ctx(db: Database, clock: FakeClock) -> AppContext:
    return build_context(make_settings(db.url), database=db, clock=clock)


@pytest.fixture
async def user(ctx: AppContext) -> UserLogin:
    return await make_user(ctx)


async def code_for(
    ctx: AppContext, user: UserLogin, *, verifier: str | None, scopes: tuple[str, ...] = ()
) -> str:
    async with ctx.database.transaction() as conn:
        issued = await issue_code(
            conn,
            auth=ctx.user_auth,
            client=user.client,
            user_id=user.user_id,
            redirect_uri=REDIRECT_URI,
            scopes=scopes,
            code_challenge=None if verifier is None else s256(verifier),
            now=ctx.clock(),
        )
    assert len(issued.code) == 36
    return issued.code


async def exchange(
    ctx: AppContext,
    user: UserLogin,
    code: str,
    *,
    verifier: str | None,
    redirect_uri: str = REDIRECT_URI,
) -> TokenSet | OAuthError:
    """The tokens, or the refusal; the unit of work is committed either way."""
    async with ctx.database.transaction() as conn:
        try:
            return await exchange_code(
                conn,
                auth=ctx.user_auth,
                client=user.client,
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=verifier,
                now=ctx.clock(),
            )
        except OAuthError as refusal:
            return refusal


async def refreshed(
    ctx: AppContext, user: UserLogin, token: str, **more: object
) -> TokenSet | OAuthError:
    async with ctx.database.transaction() as conn:
        try:
            return await refresh(
                conn,
                auth=ctx.user_auth,
                client=user.client,
                refresh_token=token,
                now=ctx.clock(),
                **more,  # type: ignore[arg-type]
            )
        except OAuthError as refusal:
            return refusal


async def accepted(ctx: AppContext, token: str) -> UserPrincipal | None:
    try:
        return await ctx.user_auth.principal(token)
    except InvalidToken:
        return None


def refusal(outcome: TokenSet | OAuthError) -> str:
    assert isinstance(outcome, OAuthError), outcome
    return outcome.error


async def test_a_code_gives_tokens_once_and_a_reuse_revokes_them(
    ctx: AppContext, user: UserLogin
) -> None:
    verifier = new_verifier()
    code = await code_for(ctx, user, verifier=verifier)
    tokens = await exchange(ctx, user, code, verifier=verifier)
    assert isinstance(tokens, TokenSet)
    assert tokens.as_json()["token_type"] == "Bearer"
    assert tokens.as_json()["expires_in"] == 3600
    assert await accepted(ctx, tokens.access_token) is not None
    assert refusal(await exchange(ctx, user, code, verifier=verifier)) == "invalid_grant"
    assert await accepted(ctx, tokens.access_token) is None
    elsewhere = build_context(
        make_settings(ctx.database.url), database=ctx.database, clock=ctx.clock
    )
    assert await accepted(elsewhere, user.token) is not None
    assert await accepted(elsewhere, tokens.access_token) is None
    assert refusal(await refreshed(ctx, user, tokens.refresh_token)) == "invalid_grant"


async def test_a_wrong_verifier_a_missing_one_or_another_redirect_is_refused(
    ctx: AppContext, user: UserLogin
) -> None:
    verifier = new_verifier()
    code = await code_for(ctx, user, verifier=verifier)
    assert refusal(await exchange(ctx, user, code, verifier=new_verifier())) == "invalid_grant"
    assert refusal(await exchange(ctx, user, code, verifier=None)) == "invalid_grant"
    other = "https://app.example.com/oauth/other"
    outcome = await exchange(ctx, user, code, verifier=verifier, redirect_uri=other)
    assert refusal(outcome) == "invalid_grant"
    assert isinstance(await exchange(ctx, user, code, verifier=verifier), TokenSet)


async def test_a_verifier_for_a_code_without_challenge_is_refused(
    ctx: AppContext, user: UserLogin
) -> None:
    code = await code_for(ctx, user, verifier=None)
    assert refusal(await exchange(ctx, user, code, verifier=new_verifier())) == "invalid_grant"


async def test_a_code_expires_after_60_seconds(
    ctx: AppContext, user: UserLogin, clock: FakeClock
) -> None:
    verifier = new_verifier()
    late = await code_for(ctx, user, verifier=verifier)
    clock.advance(60)
    assert refusal(await exchange(ctx, user, late, verifier=verifier)) == "invalid_grant"
    in_time = await code_for(ctx, user, verifier=verifier)
    clock.advance(59)
    assert isinstance(await exchange(ctx, user, in_time, verifier=verifier), TokenSet)


async def test_a_code_is_bound_to_its_client(ctx: AppContext, user: UserLogin) -> None:
    other = await make_user(ctx)
    verifier = new_verifier()
    code = await code_for(ctx, user, verifier=verifier)
    assert refusal(await exchange(ctx, other, code, verifier=verifier)) == "invalid_grant"


async def test_refresh_rotates_and_a_spent_refresh_token_revokes_the_grant(
    ctx: AppContext, user: UserLogin
) -> None:
    first = await refreshed(ctx, user, user.refresh_token)
    assert isinstance(first, TokenSet)
    assert first.refresh_token != user.refresh_token
    assert first.id_token is not None
    assert await accepted(ctx, first.access_token) is not None
    second = await refreshed(ctx, user, first.refresh_token)
    assert isinstance(second, TokenSet)
    assert refusal(await refreshed(ctx, user, first.refresh_token)) == "invalid_grant"
    for token in (user.token, first.access_token, second.access_token):
        assert await accepted(ctx, token) is None
    assert refusal(await refreshed(ctx, user, second.refresh_token)) == "invalid_grant"


async def test_refresh_honours_a_narrower_scope_and_refuses_a_wider_one(
    ctx: AppContext, db: Database, clock: FakeClock
) -> None:
    user = await make_user(ctx, scopes=["remote:door:write", "remote:horn:write"])
    narrower = await refreshed(ctx, user, user.refresh_token, scope=["remote:horn:write"])
    assert isinstance(narrower, TokenSet)
    principal = await accepted(ctx, narrower.access_token)
    assert principal is not None
    assert principal.scopes == {"remote:horn:write"}
    wider = await refreshed(ctx, user, narrower.refresh_token, scope=["remote:lights:write"])
    assert refusal(wider) == "invalid_scope"


async def test_refresh_checks_the_realm_when_given(ctx: AppContext, user: UserLogin) -> None:
    other = await refreshed(ctx, user, user.refresh_token, realm="clientsB2COpel")
    assert refusal(other) == "invalid_grant"
    short = await refreshed(ctx, user, user.refresh_token, realm="clientsB2CPeugeot")
    assert isinstance(short, TokenSet)


async def test_a_refresh_token_lasts_past_two_weeks(
    ctx: AppContext, user: UserLogin, clock: FakeClock
) -> None:
    clock.advance(30 * 86_400)
    assert isinstance(await refreshed(ctx, user, user.refresh_token), TokenSet)


async def test_revoke_is_per_client_and_silent_for_unknown_tokens(
    ctx: AppContext, user: UserLogin
) -> None:
    other = await make_user(ctx)
    async with ctx.database.transaction() as conn:
        for token in ("nonsense", "a.b.c", other.refresh_token[:-2]):
            await revoke(conn, auth=ctx.user_auth, client=user.client, token=token, now=ctx.clock())
        with pytest.raises(OAuthError) as caught:
            await revoke(
                conn,
                auth=ctx.user_auth,
                client=user.client,
                token=other.refresh_token,
                now=ctx.clock(),
            )
    assert caught.value.error == "unauthorized_client"
    assert await accepted(ctx, other.token) is not None


async def test_first_party_openid_profile_gets_every_scope_third_party_what_it_asked(
    ctx: AppContext,
) -> None:
    brand = await make_user(ctx, first_party=True)
    verifier = new_verifier()
    code = await code_for(ctx, brand, verifier=verifier, scopes=("openid", "profile"))
    tokens = await exchange(ctx, brand, code, verifier=verifier)
    assert isinstance(tokens, TokenSet)
    assert "remote:door:write" in tokens.scope.split()
    assert "data:telemetry" in tokens.scope.split()
    third = await make_user(ctx)
    code = await code_for(ctx, third, verifier=verifier, scopes=("openid", "profile"))
    tokens = await exchange(ctx, third, code, verifier=verifier)
    assert isinstance(tokens, TokenSet)
    assert tokens.scope == "openid profile"
    id_claims = peek(tokens.id_token or "")[1]
    assert id_claims["aud"] == third.client_id
    assert id_claims["email"] == third.login


async def test_client_authentication(ctx: AppContext, user: UserLogin) -> None:
    async with ctx.database.transaction() as conn:
        found = await authenticate_client(conn, client_id=user.client_id, secret=user.client_secret)
        assert found.client_id == user.client_id
        for secret in (None, "", "wrong", (user.client_secret or "") + "x"):
            with pytest.raises(OAuthError) as caught:
                await authenticate_client(conn, client_id=user.client_id, secret=secret)
            assert (caught.value.error, caught.value.status) == ("invalid_client", 401)
        with pytest.raises(OAuthError):
            await authenticate_client(conn, client_id="nobody", secret="x")
        public = await create_client(
            conn,
            name="app",
            redirect_uris=["mymap://oauth2redirect/fr"],
            scopes=["openid"],
            realm="clientsB2CPeugeot",
            now=ctx.clock(),
            public=True,
        )
        assert public.secret is None
        found = await authenticate_client(conn, client_id=public.client.client_id, secret=None)
        assert found.is_public
        with pytest.raises(OAuthError):
            await authenticate_client(conn, client_id=public.client.client_id, secret="x")


async def test_rotation_keeps_old_tokens_valid_and_publishes_both_keys(
    ctx: AppContext, db: Database, clock: FakeClock, user: UserLogin
) -> None:
    old_kid = peek(user.token)[0]["kid"]
    clock.advance(1)
    async with ctx.database.transaction() as conn:
        new_kid = await ctx.user_auth.keys.rotate(conn, now=clock())
        jwks = await ctx.user_auth.keys.jwks(conn, now=clock())
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]
    assert all("d" not in key for key in jwks["keys"]), "no private part is published"
    later = await make_user(ctx)
    assert peek(later.token)[0]["kid"] == new_kid
    # A process that never saw either key verifies both tokens.
    fresh = build_context(make_settings(db.url), database=db, clock=clock)
    assert await accepted(fresh, user.token) is not None
    assert await accepted(fresh, later.token) is not None
    # Once every token the old key signed has expired, it is no longer published.
    clock.advance(ctx.user_auth.policy.publish_s)
    async with ctx.database.transaction() as conn:
        jwks = await ctx.user_auth.keys.jwks(conn, now=clock())
    assert [k["kid"] for k in jwks["keys"]] == [new_kid]
