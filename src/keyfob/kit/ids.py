"""Identifiers that match the contract's path pattern ``([0-9a-fA-F]|-|_)*`` (decision 9).

A new id is 32 lowercase hex digits: 12 of its creation time in milliseconds, then 20 random
(80 bits from the operating system). Time first makes every index on an id, or on a column
that refers to one, grow at its right edge: a batch of inserts dirties a few pages instead of
one page per row, and SQLite writes every dirty page to its log at each commit (measured on
the accept path: about a tenth of its cost). An id tells when it was made, which every API
answer says anyway; the random part keeps ids unguessable and says nothing of the volume.

Random bytes are drawn in blocks, per thread, so an id costs no system call.
"""

from __future__ import annotations

import os
import re
import threading
import time

ID_PATTERN = re.compile(r"^[0-9a-fA-F_-]{1,64}$")

_RANDOM_BYTES = 10
_BLOCK = 4096 - 4096 % _RANDOM_BYTES


class _Entropy(threading.local):
    def __init__(self) -> None:
        self.block = b""
        self.offset = 0

    def draw(self) -> bytes:
        if self.offset >= len(self.block):
            self.block, self.offset = os.urandom(_BLOCK), 0
        start = self.offset
        self.offset = start + _RANDOM_BYTES
        return self.block[start : self.offset]


_entropy = _Entropy()


def new_id() -> str:
    """Creation time (ms, 12 hex digits) then 80 random bits (20 hex digits)."""
    return f"{time.time_ns() // 1_000_000:012x}{_entropy.draw().hex()}"


class _Ordered(threading.local):
    def __init__(self) -> None:
        self.last = 0


_ordered = _Ordered()
_RANDOM_SPAN = 1 << (8 * _RANDOM_BYTES)


def new_ordered_id() -> str:
    """Like ``new_id``, and greater than every id this thread made before, even within one
    millisecond: the random part then grows by a random step (as a monotonic ULID does).

    For rows read back in id order that must keep the order they were made in (the outbox's
    notifications: a remote's events, several in one millisecond, on the event streams)."""
    now = (time.time_ns() // 1_000_000) * _RANDOM_SPAN
    step = int.from_bytes(_entropy.draw()[:4], "big") + 1
    value = max(now + int.from_bytes(_entropy.draw(), "big"), _ordered.last + step)
    _ordered.last = value
    return f"{value:032x}"


def random_suffix(hex_digits: int = 12) -> str:
    """Random hex digits for names that must differ between processes (MQTT client ids,
    lease owners). Not a slice of ``new_id``: its first digits are the time."""
    return os.urandom((hex_digits + 1) // 2).hex()[:hex_digits]


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.fullmatch(value))
