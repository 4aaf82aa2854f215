"""The pure parts of the user face's authentication: PKCE, scope granting, the throttle,
and reading keyfob's own access tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keyfob.auth.keys import SigningKey, _generate, published
from keyfob.auth.oauth_errors import OAuthError
from keyfob.auth.pkce import new_verifier, s256, verifies
from keyfob.auth.scopes import ALL_SCOPES, DATA_SCOPES, REMOTE_SCOPES, grant_scopes, parse_scopes
from keyfob.auth.throttle import FailureThrottle, LoginThrottle
from keyfob.auth.tokens import TokenPolicy, mint_access_token, mint_id_token, read_access_token
from keyfob.errors import InvalidToken

# RFC 7636 appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_the_rfc_example() -> None:
    assert s256(RFC_VERIFIER) == RFC_CHALLENGE
    assert verifies(RFC_CHALLENGE, RFC_VERIFIER)


@pytest.mark.parametrize(
    "verifier",
    [None, "", RFC_VERIFIER[:-1] + "l", "short", "x" * 129, RFC_VERIFIER + " ", RFC_CHALLENGE],
)
def test_other_verifiers_do_not_verify(verifier: str | None) -> None:
    assert not verifies(RFC_CHALLENGE, verifier)


def test_a_new_verifier_is_valid_and_fresh() -> None:
    first, second = new_verifier(), new_verifier()
    assert first != second
    assert verifies(s256(first), first)


def test_scopes_are_read_space_or_comma_separated() -> None:
    assert parse_scopes("openid profile") == ("openid", "profile")
    assert parse_scopes("remote:door:write,remote:horn:write, openid") == (
        "remote:door:write",
        "remote:horn:write",
        "openid",
    )
    assert parse_scopes(None) == parse_scopes("") == ()
    assert parse_scopes("openid openid") == ("openid",)


def test_a_first_party_client_asking_openid_profile_gets_every_data_and_remote_scope() -> None:
    granted = grant_scopes(["openid", "profile"], allowed=ALL_SCOPES, first_party=True)
    assert granted == ALL_SCOPES


def test_a_first_party_client_asking_narrower_gets_what_it_asked() -> None:
    asked = ["openid", "remote:door:write"]
    assert grant_scopes(asked, allowed=ALL_SCOPES, first_party=True) == set(asked)


def test_a_third_party_client_gets_what_it_asked_and_is_allowed() -> None:
    allowed = frozenset({"openid", "remote:door:write", "data:telemetry"})
    asked = ["openid", "profile", "remote:door:write", "remote:horn:write", "email"]
    assert grant_scopes(asked, allowed=allowed, first_party=False) == {
        "openid",
        "remote:door:write",
    }
    assert grant_scopes(["openid", "profile"], allowed=ALL_SCOPES, first_party=False) == {
        "openid",
        "profile",
    }


def test_asking_nothing_grants_what_is_allowed() -> None:
    allowed = frozenset({"remote:horn:write"})
    assert grant_scopes([], allowed=allowed, first_party=False) == allowed
    assert grant_scopes([], allowed=ALL_SCOPES, first_party=True) == ALL_SCOPES


def test_nothing_grantable_is_invalid_scope() -> None:
    with pytest.raises(OAuthError) as caught:
        grant_scopes(["remote:horn:write"], allowed=frozenset({"openid"}), first_party=False)
    assert caught.value.error == "invalid_scope"
    with pytest.raises(OAuthError):
        grant_scopes(["email"], allowed=ALL_SCOPES, first_party=False)


def test_the_first_party_rule_never_exceeds_what_is_allowed() -> None:
    allowed = frozenset({"openid", "profile"} | DATA_SCOPES)
    granted = grant_scopes(["openid", "profile"], allowed=allowed, first_party=True)
    assert granted == allowed
    assert not granted & REMOTE_SCOPES


def test_the_throttle_refuses_after_the_limit_until_the_window_passes() -> None:
    throttle = FailureThrottle(limit=3, window_s=60, buckets=6)
    for at in (0.0, 1.0, 2.0):
        assert throttle.check("a", now=at) is None
        throttle.fail("a", now=at)
    refused = throttle.check("a", now=3.0)
    assert refused is not None
    assert 1 <= refused.retry_after <= 60
    assert throttle.check("b", now=3.0) is None
    assert throttle.check("a", now=3.0 + refused.retry_after) is None


def test_login_throttle_counts_accounts_and_addresses_separately() -> None:
    throttle = LoginThrottle(per_account=2, per_address=3, window_s=900)
    throttle.fail(login="a@x.com", address="10.0.0.1", now=0)
    throttle.fail(login="a@x.com", address="10.0.0.2", now=0)
    assert throttle.check(login="a@x.com", address="10.0.0.9", now=1) is not None
    assert throttle.check(login="b@x.com", address="10.0.0.1", now=1) is None
    throttle.fail(login="b@x.com", address="10.0.0.1", now=1)
    throttle.fail(login="c@x.com", address="10.0.0.1", now=1)
    assert throttle.check(login="d@x.com", address="10.0.0.1", now=2) is not None
    assert throttle.check(login="d@x.com", address=None, now=2) is None


def test_the_throttle_keeps_its_memory_bounded() -> None:
    throttle = FailureThrottle(limit=1, window_s=60, max_keys=10)
    for index in range(100):
        throttle.fail(f"key-{index}", now=0)
    assert len(throttle) <= 10


NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = TokenPolicy("https://k.test/am/oauth2", 3600, 86400, 3600, 60, 60.0)


def _key(at: datetime = NOW) -> SigningKey:
    kid, key, public = _generate()
    return SigningKey(kid, at, key, public)


def _access(key: SigningKey) -> str:
    token, _ = mint_access_token(
        key,
        policy=POLICY,
        user_id="u1",
        client_id="c1",
        realm="clientsB2CPeugot/OTPPeugeot",
        scopes=frozenset({"openid", "remote:door:write"}),
        grant_id="g1",
        now=NOW,
    )
    return token


def test_an_access_token_reads_back_until_it_expires() -> None:
    key = _key()
    token = _access(key)
    claims = read_access_token(token, key.key, issuer=POLICY.issuer, now=NOW.timestamp())
    assert (claims.user_id, claims.client_id, claims.grant_id) == ("u1", "c1", "g1")
    assert claims.scopes == {"openid", "remote:door:write"}
    with pytest.raises(InvalidToken):
        read_access_token(token, key.key, issuer=POLICY.issuer, now=NOW.timestamp() + 3600)
    with pytest.raises(InvalidToken):
        read_access_token(token, key.key, issuer="https://other", now=NOW.timestamp())
    with pytest.raises(InvalidToken):
        read_access_token(token, _key().key, issuer=POLICY.issuer, now=NOW.timestamp())


def test_an_id_token_does_not_read_as_an_access_token() -> None:
    key = _key()
    id_token = mint_id_token(key, policy=POLICY, user_id="u1", client_id="c1", now=NOW)
    with pytest.raises(InvalidToken):
        read_access_token(id_token, key.key, issuer=POLICY.issuer, now=NOW.timestamp())


def test_a_replaced_key_is_published_until_its_tokens_expire() -> None:
    old, new = _key(NOW), _key(datetime(2026, 1, 2, tzinfo=UTC))
    window = POLICY.publish_s
    rotated = new.created_at.timestamp()
    at = datetime.fromtimestamp(rotated + window - 1, UTC)
    assert published([old, new], now=at, publish_s=window) == [old, new]
    at = datetime.fromtimestamp(rotated + window, UTC)
    assert published([old, new], now=at, publish_s=window) == [new]
    assert published([old], now=at, publish_s=window) == [old]
