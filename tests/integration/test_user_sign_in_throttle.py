"""End users' sign-ins: a parallel burst pays for no more hashes than the limit, and an address
that signed in before is not locked out by someone failing the account elsewhere."""

from __future__ import annotations

import asyncio

from keyfob.auth.throttle import LoginThrottle
from keyfob.auth.users import create_user, sign_in
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database

LOGIN = "ann@example.com"


async def _attempt(
    db: Database, throttle: LoginThrottle, clock: FakeClock, password: str, address: str
) -> ErrorCode | None:
    try:
        async with db.read() as conn:
            await sign_in(
                conn,
                login=LOGIN,
                password=password,
                address=address,
                throttle=throttle,
                now=clock().timestamp(),
            )
    except KeyfobError as refusal:
        return refusal.error
    return None


async def test_a_burst_of_parallel_guesses_is_refused_past_the_limit(
    db: Database, clock: FakeClock
) -> None:
    # On SQLite the sign-ins wait for the one connection in turn; on PostgreSQL they overlap,
    # and each would have paid its hash before the first failure was counted.
    throttle = LoginThrottle(per_account=3, per_address=100, window_s=900)
    async with db.transaction() as conn:
        await create_user(conn, login=LOGIN, password="right", now=clock())
    results = await asyncio.gather(
        *(_attempt(db, throttle, clock, "guess", "192.0.2.1") for _ in range(12))
    )
    assert results.count(ErrorCode.BAD_CREDENTIALS) == 3
    assert results.count(ErrorCode.SIGN_IN_THROTTLED) == 9


async def test_an_address_that_signed_in_keeps_signing_in_while_others_fail_the_account(
    db: Database, clock: FakeClock
) -> None:
    throttle = LoginThrottle(per_account=3, per_address=100, window_s=900)
    async with db.transaction() as conn:
        await create_user(conn, login=LOGIN, password="right", now=clock())
    assert await _attempt(db, throttle, clock, "right", "192.0.2.10") is None
    guesses = [await _attempt(db, throttle, clock, "guess", "203.0.113.7") for _ in range(3)]
    assert guesses == [ErrorCode.BAD_CREDENTIALS] * 3
    assert await _attempt(db, throttle, clock, "right", "198.51.100.9") is (
        ErrorCode.SIGN_IN_THROTTLED
    )
    assert await _attempt(db, throttle, clock, "right", "192.0.2.10") is None
