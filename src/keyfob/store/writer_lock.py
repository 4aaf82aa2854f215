"""SQLite's one write lock, handed from process to process as soon as it is free.

On the embedded default two processes write the one SQLite file: ``serve`` (API, dispatcher,
simulated cars) and its delivery worker child. SQLite lets one writer in at a time; a writer
that finds the file locked sleeps in SQLite's busy handler, 1, 2, 5, 10, 15, 20, 25… up to
100 ms between tries, however soon the lock came free. Under load that sleep, not the work,
was most of each step's latency: every unit of work in ``serve`` queues behind its one
connection, so one sleeping ``BEGIN IMMEDIATE`` held up every request and car answer behind it.

Each process therefore takes an advisory ``flock`` on a file beside the database
(``<database>-writer``) for the length of each write transaction, before ``BEGIN IMMEDIATE``,
and lets it go after ``COMMIT`` or ``ROLLBACK``. A waiter retries every 50 to 500 µs, so it is in
within half a millisecond of the lock coming free, up to the busy time-out, after which it
fails as SQLite would (``database is locked``: an outage, ``store.outage``). The kernel drops a
dead process's lock, so a crash never leaves it held.

The lock is only an accelerator: SQLite's own locking still decides. A process that does not
take it (an older keyfob, the ``sqlite3`` shell) is waited for by the busy handler as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time

_FIRST_PAUSE_S = 0.00005
_LONGEST_PAUSE_S = 0.0005


def lock_path(database_file: str) -> str:
    return f"{database_file}-writer"


class WriterLock:
    """An exclusive ``flock`` on ``path``, per process (every thread of it shares it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def acquire(self, timeout_s: float) -> None:
        """Block this thread until the lock is ours; ``database is locked`` after ``timeout_s``."""
        fd = self._descriptor()
        deadline = time.monotonic() + timeout_s
        pause = _FIRST_PAUSE_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked (writer lock)")
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE_S)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
