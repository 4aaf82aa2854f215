"""SQLite's wait for the disk taken out of the write lock: commit, let go, then flush the log.

With ``synchronous=FULL`` in WAL mode, SQLite flushes the log inside every ``COMMIT``, while
the one write lock (SQLite's, and ``store.writer_lock`` around it) is held. On the embedded
default three processes take turns on that lock hundreds of times a second, so each waited
for the others' disk flushes as well as its own: at 300 remotes a second the lock was busy
nine tenths of the time, and ``synchronous=NORMAL`` halved the whole path's latency.

A unit of work (``store.units``) therefore commits with ``synchronous=NORMAL`` (its frames are
written to the log, not yet flushed), lets the lock go, and only then flushes the log
(``fdatasync``), on the driver's thread, before its caller is answered. Durability is
``FULL``'s (spec decision 32): the log is only appended to until a checkpoint has copied all
of it into the database file, and a checkpoint flushes the log before it copies and the
database file after, so a flush of the log file, through any descriptor of it, covers every
frame committed before it began, whichever process wrote it. Flushes of several processes run
side by side, and the file system's journal joins them.

What follows a commit (a 202, a command to a car, a webhook POST after a claim) waits for that
flush, which covers every earlier commit of every process: nothing leaves keyfob on the
strength of a row a power cut could still take back, although another process may read the
row in the fraction of a millisecond before it is on disk. Readers that send what they read
(a claim, the event streams) flush before they send (``Database.flush_read``).

A flush that fails (an I/O error) fails the unit: its caller is not answered as if the rows
were stored, although the commit stays in the log.
"""

from __future__ import annotations

import os


class WalFlush:
    """Flushes of one SQLite file's log, from any thread of one process.

    Only made for ``synchronous=FULL`` (``Database.wal_flush``): the level a unit's connection
    goes back to once its commit is made without waiting for the disk.
    """

    LEVEL = "FULL"

    def __init__(self, database_file: str) -> None:
        self.path = f"{database_file}-wal"

    def flush(self) -> None:
        """Return once everything written to the log so far is on disk."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # no log: the last connection checkpointed it into the database, synced
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
