"""Plausible 17-character VINs for simulated vehicles, with a valid ISO 3779 check digit."""

from __future__ import annotations

import random

_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True))}
_VALUES.update(dict(zip("JKLMN", range(1, 6), strict=True)))
_VALUES.update({"P": 7, "R": 9})
_VALUES.update(dict(zip("STUVWXYZ", range(2, 10), strict=True)))
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_MAKERS = ("VF3", "VF7", "VXK", "W0L", "ZFA")  # world manufacturer identifiers of the group


def check_digit(vin: str) -> str:
    total = sum(_VALUES[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def random_vin(rng: random.Random) -> str:
    body = rng.choice(_MAKERS) + "".join(rng.choice(_ALPHABET) for _ in range(14))
    return body[:8] + check_digit(body[:8] + "0" + body[9:]) + body[9:]
