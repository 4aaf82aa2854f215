"""End users on both engines: accounts, their vehicles, and signing in with a throttle."""

from __future__ import annotations

import pytest

from conftest import Tenant
from keyfob.auth.throttle import LoginThrottle
from keyfob.auth.users import (
    create_user,
    get_user_by_login,
    link_vehicle,
    list_users,
    sign_in,
    vehicle_ids_of,
)
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database


async def test_logins_are_email_addresses_unique_in_any_case(
    db: Database, clock: FakeClock
) -> None:
    async with db.transaction() as conn:
        user = await create_user(conn, login=" Ann@Example.COM ", password="pw", now=clock())
        assert user.login == "ann@example.com"
        with pytest.raises(KeyfobError) as caught:
            await create_user(conn, login="ANN@example.com", password="pw", now=clock())
        assert caught.value.error is ErrorCode.ALREADY_EXISTS
        for bad in ("ann", "ann@", "@example.com", "a b@example.com", "a@b"):
            with pytest.raises(KeyfobError) as caught:
                await create_user(conn, login=bad, password="pw", now=clock())
            assert caught.value.error is ErrorCode.INVALID_BODY
        assert [u.login for u in await list_users(conn)] == ["ann@example.com"]
        found = await get_user_by_login(conn, "ANN@example.com")
        assert found is not None
        assert found.id == user.id


async def test_a_user_owns_fleet_vehicles_without_taking_them_from_the_fleet(
    db: Database, clock: FakeClock, tenant: Tenant
) -> None:
    electric = tenant.vehicles["Electric"].id
    async with db.transaction() as conn:
        user = await create_user(conn, login="ann@example.com", password="pw", now=clock())
        assert await link_vehicle(conn, user_id=user.id, vehicle_id=electric, now=clock())
        assert not await link_vehicle(conn, user_id=user.id, vehicle_id=electric, now=clock())
        assert await vehicle_ids_of(conn, user.id) == [electric]
        with pytest.raises(KeyfobError) as caught:
            await link_vehicle(conn, user_id=user.id, vehicle_id="nope", now=clock())
        assert caught.value.error is ErrorCode.NOT_FOUND
        with pytest.raises(KeyfobError):
            await link_vehicle(conn, user_id="nobody", vehicle_id=electric, now=clock())
    answer = await tenant.http.get(f"{tenant.fleet}/vehicles/{electric}")
    assert answer.status_code == 200


async def test_sign_in_is_throttled_per_account_before_the_password_is_checked(
    db: Database, clock: FakeClock
) -> None:
    throttle = LoginThrottle(per_account=3, per_address=100, window_s=900)
    async with db.transaction() as conn:
        await create_user(conn, login="ann@example.com", password="right", now=clock())
    async with db.read() as conn:

        async def attempt(password: str, address: str = "192.0.2.1") -> ErrorCode | None:
            try:
                await sign_in(
                    conn,
                    login="ann@example.com",
                    password=password,
                    address=address,
                    throttle=throttle,
                    now=clock().timestamp(),
                )
            except KeyfobError as refusal:
                return refusal.error
            return None

        assert await attempt("right") is None
        assert [await attempt("wrong") for _ in range(3)] == [ErrorCode.BAD_CREDENTIALS] * 3
        assert await attempt("right", "198.51.100.7") is ErrorCode.SIGN_IN_THROTTLED
        clock.advance(900)
        assert await attempt("right") is None


async def test_sign_in_is_throttled_per_address_across_accounts(
    db: Database, clock: FakeClock
) -> None:
    throttle = LoginThrottle(per_account=100, per_address=2, window_s=900)
    async with db.transaction() as conn:
        await create_user(conn, login="ann@example.com", password="right", now=clock())
    async with db.read() as conn:
        for login in ("x@example.com", "y@example.com"):
            with pytest.raises(KeyfobError):
                await sign_in(
                    conn,
                    login=login,
                    password="guess",
                    address="192.0.2.1",
                    throttle=throttle,
                    now=clock().timestamp(),
                )
        with pytest.raises(KeyfobError) as caught:
            await sign_in(
                conn,
                login="ann@example.com",
                password="right",
                address="192.0.2.1",
                throttle=throttle,
                now=clock().timestamp(),
            )
        assert caught.value.error is ErrorCode.SIGN_IN_THROTTLED
        assert int(caught.value.headers["Retry-After"]) >= 1
        user = await sign_in(
            conn,
            login="ANN@example.com",
            password="right",
            address="192.0.2.2",
            throttle=throttle,
            now=clock().timestamp(),
        )
        assert user.login == "ann@example.com"
