"""The sign-in throttle's bracket (attempts under way count) and its trusted addresses."""

from __future__ import annotations

import pytest

from keyfob.auth.throttle import TRUST_S, LoginThrottle
from keyfob.errors import ErrorCode, KeyfobError


def _refused(throttle: LoginThrottle, login: str, address: str | None, now: float = 0) -> int:
    """The ``Retry-After`` of a refused ``begin`` (fails the test if it was admitted)."""
    with pytest.raises(KeyfobError) as caught:
        throttle.begin(login=login, address=address, now=now)
    assert caught.value.error is ErrorCode.SIGN_IN_THROTTLED
    return int(caught.value.headers["Retry-After"])


def test_attempts_under_way_count_until_they_end() -> None:
    throttle = LoginThrottle(per_account=2, per_address=10, window_s=60)
    first = throttle.begin(login="p", address="10.0.0.1", now=0)
    second = throttle.begin(login="p", address="10.0.0.2", now=0)
    assert _refused(throttle, "p", "10.0.0.3") == 1, "they end within a hash's time"
    throttle.end(first, now=0, verified=None)  # no verdict: counts for nothing
    third = throttle.begin(login="p", address="10.0.0.3", now=0)
    throttle.end(second, now=1, verified=False)
    throttle.end(third, now=1, verified=False)
    assert 1 < _refused(throttle, "p", "10.0.0.4", now=2) <= 60
    throttle.begin(login="p", address="10.0.0.4", now=61)


def test_an_address_that_signed_in_is_not_refused_for_its_login_count() -> None:
    throttle = LoginThrottle(per_account=1, per_address=3, window_s=60)
    throttle.end(throttle.begin(login="p", address="office", now=0), now=0, verified=True)
    throttle.end(throttle.begin(login="p", address="attacker", now=1), now=1, verified=False)
    _refused(throttle, "p", "attacker", now=2)
    _refused(throttle, "p", "elsewhere", now=2)
    for _ in range(3):  # not counted ahead: parallel requests of a known address all pass
        throttle.begin(login="p", address="office", now=2)
    throttle.begin(login="q", address="office", now=2)  # the trust is for that login only
    throttle.fail(login="p", address="attacker", now=TRUST_S)
    _refused(throttle, "p", "office", now=TRUST_S + 1)  # the trust has lapsed


def test_its_own_address_count_still_applies_to_a_trusted_address() -> None:
    throttle = LoginThrottle(per_account=10, per_address=2, window_s=60)
    throttle.end(throttle.begin(login="p", address="office", now=0), now=0, verified=True)
    for login in ("x", "y"):
        throttle.end(throttle.begin(login=login, address="office", now=1), now=1, verified=False)
    _refused(throttle, "p", "office", now=2)


def test_trusted_addresses_stay_bounded() -> None:
    throttle = LoginThrottle(per_account=1, per_address=1000, window_s=60, max_trusted=10)
    for n in range(100):
        throttle.succeed(login=f"p{n}", address="a", now=0)
    throttle.fail(login="p99", address="b", now=0)
    throttle.begin(login="p99", address="a", now=1)  # the newest are kept
