"""WAL checkpoints on a thread of their own, not inside whichever commit crossed the threshold.

In WAL mode SQLite copies the log back into the database file (a checkpoint) once it has grown
past ``wal_autocheckpoint`` pages, and it does so inside the commit that crossed the line: that
unit of work, and everything queued behind it on the process's one connection, waits while a
thousand pages are written and the database file is synced. With the writer lock
(``store.writer_lock``) taken until the commit returns, the other process waits too. Those
waits were the tail of ``bench/e2e.py``'s latency at 300 remotes/s.

A long-running process therefore turns the automatic checkpoint off on its connection and runs
a ``PASSIVE`` checkpoint every ``every_s`` on a connection and thread of its own. ``PASSIVE``
waits for no reader and no writer: it copies what it can while the writers go on. But the log
only starts again from its beginning when a writer finds it wholly copied, which under a steady
stream of commits it never is: frames keep arriving behind the copy. So once the log holds more
than ``RESTART_AFTER_FRAMES``, the round takes the writer lock and copies the few frames that
came in meanwhile (short: the bulk is already copied), and the next writer starts the log
again. Short commands keep SQLite's own checkpoints, and SQLite checkpoints whatever is left
when the last connection closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from keyfob.store.writer_lock import WriterLock

log = logging.getLogger("keyfob.store")

RESTART_AFTER_FRAMES = 1000
"""SQLite's own ``wal_autocheckpoint`` default: about 4 MiB of log."""


class Checkpointer:
    """A daemon thread checkpointing one SQLite file every ``every_s`` seconds."""

    def __init__(self, path: str, every_s: float, lock: WriterLock, lock_timeout_s: float) -> None:
        self.path = path
        self.every_s = every_s
        self.rounds = 0
        self.restarts = 0
        self._lock = lock
        self._lock_timeout_s = lock_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.every_s):
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.path, isolation_level=None, timeout=1)
                    self._round(connection)
                except sqlite3.Error as error:
                    # The file may be gone or locked for a moment: the next round tries again.
                    log.debug("WAL checkpoint of %s skipped: %s", self.path, error)
        finally:
            if connection is not None:
                connection.close()
            self._lock.close()

    def _round(self, connection: sqlite3.Connection) -> None:
        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.rounds += 1
        if frames <= RESTART_AFTER_FRAMES:
            return
        self._lock.acquire(self._lock_timeout_s)
        try:
            _busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            self._lock.release()
        if copied == frames:
            self.restarts += 1
