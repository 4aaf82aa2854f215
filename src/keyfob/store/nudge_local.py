"""Cross-process nudges on SQLite: one Unix datagram socket per listener, on this host.

PostgreSQL carries nudges with NOTIFY (``store.nudge``). SQLite has no such channel, and its
processes all run on one host, beside one file: ``serve`` and the children it starts. So each
listener binds a datagram socket in a folder beside the database file (``<file>-nudge/``, next
to its ``-wal``, ``-shm`` and ``-writer`` files; in the temporary folder instead, named after a
hash of the file's path, when that path is too long for a socket's address), and a nudge is one
empty datagram sent, without waiting, to every socket of the channel found there.

As on PostgreSQL, a nudge carries nothing and may be lost: the database stays the queue and the
listener's poll stays the safety net. A socket left by a dead process refuses the datagram and
is removed; a listener whose queue is full is already due to wake. The folder is listed again at
most once a second, so a listener that has just started may miss nudges for that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

log = logging.getLogger("keyfob.store.nudge")

RELIST_S = 1.0
_ADDRESS_ROOM = 107 - len("/events_stored.4194304.999999")
"""A socket's address holds 107 bytes: room for the folder, beside the longest name in it."""
_numbers = itertools.count()


def _tag(channel: str) -> str:
    """How a channel's sockets are named (short: the folder's path shares the address)."""
    return channel.removeprefix("keyfob_")


def nudge_folder(database_file: str) -> Path:
    """Where the listeners of one SQLite file bind their sockets."""
    path = os.path.realpath(database_file)
    beside = Path(f"{path}-nudge")
    if len(os.fsencode(beside)) <= _ADDRESS_ROOM:
        return beside
    digest = hashlib.sha256(path.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"keyfob-nudge-{digest}"


class LocalNudges:
    """Sends nudges to the listeners of one SQLite file, whatever process they run in."""

    def __init__(self, database_file: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = nudge_folder(database_file)
        self._clock = clock
        self._socket: socket.socket | None = None
        self._targets: dict[str, tuple[float, list[str]]] = {}

    def _listeners(self, channel: str) -> list[str]:
        listed = self._targets.get(channel)
        now = self._clock()
        if listed is not None and now - listed[0] < RELIST_S:
            return listed[1]
        try:
            names = [n for n in os.listdir(self.folder) if n.startswith(f"{_tag(channel)}.")]
        except FileNotFoundError:
            names = []
        paths = [str(self.folder / name) for name in names]
        self._targets[channel] = (now, paths)
        return paths

    def send(self, channel: str) -> int:
        """One datagram to each listener of ``channel``; how many took it."""
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        reached = 0
        for path in list(self._listeners(channel)):  # a copy: ``_forget`` takes from the list
            try:
                self._socket.sendto(b"", path)
                reached += 1
            except BlockingIOError:
                reached += 1  # its queue is full: it has nudges to read already
            except (ConnectionRefusedError, FileNotFoundError):
                self._forget(channel, path)
            except OSError as problem:
                log.debug("nudge to %s not sent: %s", path, problem)
        return reached

    def _forget(self, channel: str, path: str) -> None:
        """A socket nobody reads any more (its process died): removed for good."""
        with contextlib.suppress(OSError):
            os.unlink(path)
        listed = self._targets.get(channel)
        if listed is not None and path in listed[1]:
            listed[1].remove(path)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


@contextlib.asynccontextmanager
async def listening_locally(
    database_file: str, on_nudge: Callable[[], None], channel: str
) -> AsyncIterator[Path]:
    """Call ``on_nudge`` on every nudge on ``channel`` for as long as the block runs."""
    name = f"{_tag(channel)}.{os.getpid()}.{next(_numbers)}"

    def heard(datagrams: list[bytes]) -> None:
        on_nudge()

    async with bound_socket(database_file, name, heard, size=16) as path:
        on_nudge()  # whatever became due while nobody listened
        yield path


@contextlib.asynccontextmanager
async def bound_socket(
    database_file: str, name: str, on_datagrams: Callable[[list[bytes]], None], *, size: int
) -> AsyncIterator[Path]:
    """A datagram socket called ``name`` in the folder of ``database_file``'s nudges, bound
    for as long as the block runs; ``on_datagrams`` gets what it received (each datagram cut
    at ``size`` bytes) each time it becomes readable. Also for payloads that are not nudges
    (``notifications.handover_local``)."""
    folder = nudge_folder(database_file)
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / name
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(str(path))
    loop = asyncio.get_running_loop()

    def readable() -> None:
        received = []
        while True:
            try:
                received.append(sock.recv(size))
            except OSError:  # nothing more to read now (BlockingIOError), or closed
                break
        if received:
            on_datagrams(received)

    loop.add_reader(sock.fileno(), readable)
    try:
        yield path
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()  # the last listener of this file tidies up
