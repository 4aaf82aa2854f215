"""SQLite's cross-process nudges: what one process stores wakes the listeners of another.

``serve``'s children share one SQLite file; a nudge is a datagram to each listener's socket
(``store.nudge_local``). What a user would notice if it broke: work waits for the next poll.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from keyfob.store.engine import Database
from keyfob.store.nudge import EVENTS_STORED, REMOTES_DUE, Nudger, listening, nudge
from keyfob.store.nudge_local import LocalNudges, listening_locally, nudge_folder


def send_once(file: str, channel: str) -> int:
    sender = LocalNudges(file)
    try:
        return sender.send(channel)
    finally:
        sender.close()


async def heard_within(event: asyncio.Event, seconds: float = 2.0) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def test_a_nudge_from_another_process_wakes_the_listener(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    woken = asyncio.Event()
    try:
        async with listening(database, woken.set, EVENTS_STORED):
            await heard_within(woken)  # the listener wakes once as it starts
            woken.clear()
            sender = textwrap.dedent(f"""
                from keyfob.store.nudge_local import LocalNudges
                sender = LocalNudges({str(tmp_path / "k.db")!r})
                print(sender.send({EVENTS_STORED!r}))
                sender.close()
            """)
            found = subprocess.run(
                [sys.executable, "-c", sender], capture_output=True, text=True, check=True
            )
            assert found.stdout.strip() == "1"
            assert await heard_within(woken)
    finally:
        await database.dispose()


async def test_channels_are_kept_apart(tmp_path: Path) -> None:
    file = str(tmp_path / "k.db")
    due, stored = asyncio.Event(), asyncio.Event()
    async with (
        listening_locally(file, due.set, REMOTES_DUE),
        listening_locally(file, stored.set, EVENTS_STORED),
    ):
        due.clear()
        stored.clear()
        assert send_once(file, EVENTS_STORED) == 1
        assert await heard_within(stored)
        assert not due.is_set()


async def test_a_listener_that_stopped_is_no_longer_nudged(tmp_path: Path) -> None:
    file = str(tmp_path / "k.db")
    async with listening_locally(file, lambda: None, REMOTES_DUE) as path:
        assert path.exists()
    assert not path.exists()
    assert send_once(file, REMOTES_DUE) == 0


async def test_the_socket_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    file = str(tmp_path / "k.db")
    folder = nudge_folder(file)
    folder.mkdir(mode=0o700, exist_ok=True)
    left = folder / f"{REMOTES_DUE.removeprefix('keyfob_')}.999999.0"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(left))
    sock.close()  # a process killed before it could remove its socket
    assert send_once(file, REMOTES_DUE) == 0
    assert not left.exists()


async def test_nudges_from_the_stores_own_calls(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    woken = asyncio.Event()
    try:
        async with listening(database, woken.set, REMOTES_DUE):
            await heard_within(woken)
            woken.clear()
            await nudge(database)  # REMOTES_DUE, as the acceptor sends it
            assert await heard_within(woken)
            woken.clear()
            Nudger(database, REMOTES_DUE).request()  # as the dispatcher sends it
            assert await heard_within(woken)
    finally:
        await database.dispose()


async def test_the_sockets_live_beside_the_database_file() -> None:
    with tempfile.TemporaryDirectory(prefix="kf") as short:  # pytest's own folders are long
        file = os.path.join(short, "keyfob.db")
        async with listening_locally(file, lambda: None, EVENTS_STORED) as path:
            assert path.parent == Path(short) / "keyfob.db-nudge"
            assert send_once(file, EVENTS_STORED) == 1
        assert not (Path(short) / "keyfob.db-nudge").exists()  # the last listener tidied up


async def test_a_path_too_long_for_a_socket_uses_the_temporary_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    file = str(deep / "keyfob.db")
    woken = asyncio.Event()
    async with listening_locally(file, woken.set, EVENTS_STORED) as path:
        assert not str(path).startswith(str(tmp_path))
        assert len(str(path)) <= 107
        woken.clear()
        assert send_once(file, EVENTS_STORED) == 1
        assert await heard_within(woken)


async def test_sqlite_in_memory_has_nobody_to_nudge() -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert database.local_nudges is None
        async with listening(database, lambda: None, REMOTES_DUE):
            await nudge(database)
    finally:
        await database.dispose()
