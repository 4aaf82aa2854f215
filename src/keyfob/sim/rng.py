"""A tiny seeded random generator: one integer of state per vehicle.

``random.Random`` keeps 2.5 KiB of Mersenne Twister state; across ten thousand simulated
vehicles that alone is 25 MiB. SplitMix64 is statistically good enough for simulation, fully
reproducible from its seed, and costs one ``int``.
"""

from __future__ import annotations

import hashlib

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class Rng:
    __slots__ = ("_state",)

    def __init__(self, seed: int | str) -> None:
        digest = hashlib.blake2b(str(seed).encode(), digest_size=8).digest()
        self._state = int.from_bytes(digest, "big")

    def next64(self) -> int:
        self._state = (self._state + _GOLDEN) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1)."""
        return (self.next64() >> 11) / float(1 << 53)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def randrange(self, start: int, stop: int) -> int:
        return start + self.next64() % (stop - start)

    def hex_id(self) -> str:
        """32 hex digits, like ``kit.ids.new_id`` but reproducible."""
        return f"{self.next64():016x}{self.next64():016x}"
