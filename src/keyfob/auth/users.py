"""End users of the user face: accounts, the vehicles they own, and signing in.

Passwords are hashed exactly as partners' are (``auth.passwords``). Signing in is throttled
per account and per client address (``auth.throttle``): a throttled attempt is refused before
the hash is paid, and an unknown login costs the same hash as a wrong password, so neither
timing nor the throttle tells whether an account exists.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, column, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.passwords import hash_password, verify_password
from keyfob.auth.throttle import LoginThrottle
from keyfob.auth.user_models import user_vehicles, users
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import new_id
from keyfob.kit.text import shown

_VEHICLES = table("vehicles", column("id"))
"""The registry's table, named as ``user_vehicles``' foreign key names it (``auth`` does not
import ``vehicles``)."""
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    login: str
    """The e-mail address, in lower case."""
    first_name: str | None
    last_name: str | None
    created_at: datetime


def _user(row: Row[Any]) -> User:
    return User(row.id, row.login, row.first_name, row.last_name, row.created_at)


def normal_login(login: str) -> str:
    return login.strip().lower()


async def create_user(
    conn: AsyncConnection,
    *,
    login: str,
    password: str,
    now: datetime,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    email = normal_login(login)
    if len(email) > 254 or not _EMAIL.match(email):
        raise KeyfobError(ErrorCode.INVALID_BODY, f"login: {login!r} is not an e-mail address")
    if not password:
        raise KeyfobError(ErrorCode.INVALID_BODY, "password: must not be empty")
    if await get_user_by_login(conn, email) is not None:
        raise KeyfobError(ErrorCode.ALREADY_EXISTS, f"a user with login {email!r} exists")
    user_id = new_id()
    values = {
        "id": user_id,
        "login": email,
        "password_hash": await asyncio.to_thread(hash_password, password),
        "first_name": first_name,
        "last_name": last_name,
        "created_at": now,
    }
    await conn.execute(users.insert().values(**values))
    return User(user_id, email, first_name, last_name, now)


async def get_user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return None if row is None else _user(row)


async def get_user_by_login(conn: AsyncConnection, login: str) -> User | None:
    query = select(users).where(users.c.login == normal_login(login))
    row = (await conn.execute(query)).first()
    return None if row is None else _user(row)


async def list_users(conn: AsyncConnection) -> list[User]:
    rows = (await conn.execute(select(users).order_by(users.c.created_at, users.c.id))).all()
    return [_user(r) for r in rows]


async def link_vehicle(
    conn: AsyncConnection, *, user_id: str, vehicle_id: str, now: datetime
) -> bool:
    """Give the user the vehicle (it keeps its fleet); ``False`` if it was already theirs.

    An unknown user or vehicle is a 404 (``NOT_FOUND``).
    """
    if await get_user(conn, user_id) is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no user {shown(user_id)}")
    known = select(_VEHICLES.c.id).where(_VEHICLES.c.id == vehicle_id)
    if (await conn.execute(known)).first() is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no vehicle {shown(vehicle_id)}")
    if await owns_vehicle(conn, user_id=user_id, vehicle_id=vehicle_id):
        return False
    await conn.execute(
        user_vehicles.insert().values(user_id=user_id, vehicle_id=vehicle_id, created_at=now)
    )
    return True


async def owns_vehicle(conn: AsyncConnection, *, user_id: str, vehicle_id: str) -> bool:
    query = select(user_vehicles.c.vehicle_id).where(
        user_vehicles.c.user_id == user_id, user_vehicles.c.vehicle_id == vehicle_id
    )
    return (await conn.execute(query)).first() is not None


async def vehicle_ids_of(conn: AsyncConnection, user_id: str) -> list[str]:
    """The user's vehicles, oldest link first."""
    query = (
        select(user_vehicles.c.vehicle_id)
        .where(user_vehicles.c.user_id == user_id)
        .order_by(user_vehicles.c.created_at, user_vehicles.c.vehicle_id)
    )
    return list((await conn.execute(query)).scalars())


async def sign_in(
    conn: AsyncConnection,
    *,
    login: str,
    password: str,
    address: str | None,
    throttle: LoginThrottle,
    now: float,
) -> User:
    """The user whose login and password these are.

    Refused with 42901 ``SIGN_IN_THROTTLED`` (``Retry-After``) while the account or the
    address has failed too often (sign-ins under way counting as failures), before any hash;
    with 40101 ``BAD_CREDENTIALS`` otherwise. A success trusts the address for the account
    (``auth.throttle``). ``now`` is in seconds (``clock().timestamp()``).
    """
    email = normal_login(login)
    attempt = throttle.begin(login=email, address=address, now=now)
    verified: bool | None = None  # no verdict (the database failed): nothing to count
    try:
        row = (await conn.execute(select(users).where(users.c.login == email))).first()
        encoded = row.password_hash if row is not None else _DUMMY_HASH
        verified = await asyncio.to_thread(verify_password, password, encoded) and row is not None
    finally:
        throttle.end(attempt, now=now, verified=verified)
    if row is None or not verified:
        raise KeyfobError(ErrorCode.BAD_CREDENTIALS, "the login or the password is wrong")
    return _user(row)


_DUMMY_HASH = hash_password("not a real password")
