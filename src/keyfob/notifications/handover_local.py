"""Handing notifications over to a delivery worker in another process on the same SQLite file.

``keyfob serve`` runs its dispatcher and its delivery worker in two children, so that each has
a core. The handover (``notifications.handover``) works across them as it does inside one
process: the dispatcher leases the rows to the worker's owner in the transaction that stores
them, and once that commits it sends them to the worker as datagrams on a Unix socket that the
worker binds beside the database's nudge sockets (``store.nudge_local``). Neither side claims
or reads anything more.

The worker's owner is ``h-`` and the token its socket is named after, so the dispatcher learns
both from the folder (listed again at most once a second). Rows whose datagram cannot be sent
(the worker died, or its queue is full) go back to the dispatcher, which gives them back to the
queue at once; a worker that dies holding rows loses nothing either: their lease expires and any
worker claims them, in order, as after a crash between claim and POST. Datagrams on a
Unix socket arrive whole and in the order they were sent, so a remote's events split over two
datagrams still reach the worker in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from keyfob.kit.ids import random_suffix
from keyfob.notifications.handover import Handover, Lessee
from keyfob.notifications.queue import Claimed, Delivery, Target
from keyfob.store.nudge_local import bound_socket, nudge_folder

log = logging.getLogger("keyfob.delivery")

PREFIX = "handover."
ROWS_PER_DATAGRAM = 100
"""About 50 KiB: well inside a Unix datagram's room (the socket's send buffer, 208 KiB)."""
RELIST_S = 1.0


def owner_of(token: str) -> str:
    """The lease owner of the worker listening under ``token``."""
    return f"h-{token}"


def new_token() -> str:
    return random_suffix(12)


# -- the datagrams -------------------------------------------------------------------------


def _target(target: Target) -> list[Any]:
    return [
        target.id,
        target.fleet_id,
        target.subscribe,
        target.secrets,
        target.updated_at.isoformat(),
        target.face,
    ]


def encode(handover: Handover) -> Iterator[tuple[bytes, int]]:
    """``handover`` as datagrams of at most ``ROWS_PER_DATAGRAM`` deliveries, in its order,
    each with how many it carries."""
    follow = sorted(handover.follow)
    start = 0
    deliveries = handover.deliveries
    while start < len(deliveries):
        part = deliveries[start : start + ROWS_PER_DATAGRAM]
        start += len(part)
        targets = {d.target.id: _target(d.target) for d in part}
        rows = [
            [d.target.id, [[*row[:6], row.raised_at.isoformat()] for row in d.rows]] for d in part
        ]
        document = {
            "targets": targets,
            "follow": follow,
            "deliveries": rows,
            "owner": handover.owner,
        }
        yield orjson.dumps(document), len(part)


def decode(datagram: bytes) -> Handover:
    found = orjson.loads(datagram)
    targets = {
        key: Target(t[0], t[1], t[2], t[3], datetime.fromisoformat(t[4]), t[5])
        for key, t in found["targets"].items()
    }
    deliveries = [
        Delivery(
            targets[target_id],
            [
                Claimed(
                    row[0], row[1], row[2], row[3], row[4], row[5], datetime.fromisoformat(row[6])
                )
                for row in rows
            ],
        )
        for target_id, rows in found["deliveries"]
    ]
    return Handover(deliveries, {(k[0], k[1]) for k in found["follow"]}, owner=found["owner"])


# -- the worker's side ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def receiving(
    database_file: str, token: str, take: Callable[[Handover], list[Delivery]]
) -> AsyncIterator[Path]:
    """Bind the socket of ``token`` and pass every handover it receives to ``take``; what it
    does not take (the worker is stopping) waits for its lease to run out."""

    def received(datagrams: list[bytes]) -> None:
        for datagram in datagrams:
            try:
                left = take(decode(datagram))
            except Exception:  # the rows' leases expire and they are claimed
                log.exception("a handover could not be read")
                continue
            if left:
                log.info("%d handed-over notifications wait for their lease", len(left))

    async with bound_socket(database_file, f"{PREFIX}{token}", received, size=1 << 20) as path:
        yield path


# -- the dispatcher's side -----------------------------------------------------------------


class HandoverSender:
    """A ``remotes.dispatcher.Deliverer`` for a worker in another process on this file.

    ``lessee`` names the worker found in the folder (``None``: none is listening, and the
    dispatcher leaves its rows for a claim); ``take`` sends the rows to the worker leased to.
    ``wake`` does nothing: the worker is in another process, and the dispatcher's nudge to the
    workers of this file (``EVENTS_STORED``) reaches it for the rows it was not handed.
    """

    def __init__(
        self,
        database_file: str,
        *,
        lease: timedelta,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = nudge_folder(database_file)
        self.lease = lease
        self._clock = clock
        self._listed_at: float | None = None
        self._token: str | None = None
        self._socket: socket.socket | None = None

    @property
    def lessee(self) -> Lessee | None:
        token = self._listener()
        return None if token is None else Lessee(owner_of(token), self.lease)

    def _listener(self) -> str | None:
        now = self._clock()
        if self._listed_at is None or now - self._listed_at >= RELIST_S:
            self._listed_at = now
            try:
                names = sorted(n for n in os.listdir(self.folder) if n.startswith(PREFIX))
            except FileNotFoundError:
                names = []
            self._token = names[0].removeprefix(PREFIX) if names else None
        return self._token

    def take(self, handover: Handover) -> list[Delivery]:
        """Send the rows to the worker they are leased to; returns those that could not be
        sent (the worker died, or its queue is full), for the caller to give back."""
        token = handover.owner.removeprefix(owner_of(""))
        if not token:
            return handover.deliveries
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        path = str(self.folder / f"{PREFIX}{token}")
        sent = 0
        for datagram, count in encode(handover):
            try:
                self._socket.sendto(datagram, path)
            except (ConnectionRefusedError, FileNotFoundError):
                self._listed_at = None  # look again: the worker died, or was started again
                with contextlib.suppress(OSError):
                    os.unlink(path)
                log.warning("the delivery worker %s is gone; its rows go back", token)
                return handover.deliveries[sent:]
            except OSError as problem:
                log.warning("a handover was not sent (%s); its rows go back", problem)
                return handover.deliveries[sent:]
            sent += count
        return []

    def wake(self) -> None:
        pass

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
