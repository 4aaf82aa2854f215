"""Identifiers that match the contract's path pattern ``([0-9a-fA-F]|-|_)*`` (decision 9)."""

from __future__ import annotations

import re
import secrets

ID_PATTERN = re.compile(r"^[0-9a-fA-F_-]{1,64}$")


def new_id() -> str:
    """32 lowercase hex digits: random, so ids leak no ordering or volume."""
    return secrets.token_hex(16)


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.fullmatch(value))
