"""Notifications handed over to a delivery worker in another process on the same SQLite file.

``keyfob serve``'s default: the dispatcher runs in one child, the delivery worker in another;
the dispatcher leases its rows to that worker in the transaction that stores them and sends
them over a socket beside the database (``notifications.handover_local``). Both ends run in
this test's process, on their own sockets, exactly as in two. What a partner sees: every event
at once and in order though the worker's poll is half a minute; and when the worker the rows
were leased to is gone, they are given back and claimed at once rather than after the lease.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from test_delivery_handover import count_claims, delivered_horns

from keyfob.kit.clock import utcnow
from keyfob.notifications.handover import Handover
from keyfob.notifications.handover_local import PREFIX, decode, encode
from keyfob.notifications.models import notifications
from keyfob.notifications.queue import Claimed, Delivery, Target
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.store.nudge_local import nudge_folder


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite on a file, the one database this handover is for."""
    database = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
    await migrate.upgrade(database)
    yield database
    await database.dispose()


async def test_the_dispatcher_hands_its_rows_to_the_worker_over_a_socket(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = count_claims(monkeypatch)
    async with delivered_horns(sqlite_db, [delivery_role, vehicle_role]) as (hook, histories):
        pass
    for remote_id, history in histories.items():
        assert hook.statuses_of(remote_id) == history
    assert sum(claimed) == 0, "every row came over the socket"


async def test_rows_leased_to_a_worker_that_is_gone_are_claimed_at_once(
    sqlite_db: Database,
) -> None:
    assert sqlite_db.file is not None
    folder = nudge_folder(sqlite_db.file)
    folder.mkdir(mode=0o700, exist_ok=True)
    dead = folder / f"{PREFIX}!dead"  # sorts first: the dispatcher picks it
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(dead))
    gone.close()  # bound once, nobody reads it any more: a worker that was killed
    # Delivered within 10 s: far less than the lease of 30.
    async with (
        delivered_horns(sqlite_db, [delivery_role, vehicle_role]) as (hook, histories),
        sqlite_db.read() as conn,
    ):
        owners = set((await conn.execute(select(notifications.c.lease_owner))).scalars())
    for remote_id, history in histories.items():
        assert hook.statuses_of(remote_id) == history
    assert not Path(dead).exists(), "the dead worker's socket was removed"
    assert "h-!dead" not in owners


def test_a_handover_survives_its_datagrams() -> None:
    now = utcnow()
    target = Target("cb1", "fleet1", '{"a": 1}', [{"secret": "s"}], now, "fleet")
    rows = [
        Delivery(target, [Claimed(f"n{i}", "cb1", f"r{i % 3}", i, '{"e": 1}', i % 2, now)])
        for i in range(250)
    ]
    handover = Handover(rows, {("cb1", "r1")}, owner="h-abc")
    datagrams = list(encode(handover))
    assert [count for _, count in datagrams] == [100, 100, 50]
    back = [decode(datagram) for datagram, _ in datagrams]
    assert [d for part in back for d in part.deliveries] == rows
    assert all(part.follow == {("cb1", "r1")} and part.owner == "h-abc" for part in back)
