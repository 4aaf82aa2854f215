"""Quoting what a client sent back to it in a message, at a bounded length.

An error that names the id or key it could not use helps the reader of a log, but a client
can send an id of any length; echoing it whole would let a 10,000-character path come back in
the body. ``shown`` quotes at most ``ECHO_LIMIT`` characters and marks the cut with an ellipsis.
"""

from __future__ import annotations

ECHO_LIMIT = 64


def shown(value: str, limit: int = ECHO_LIMIT) -> str:
    """``value`` quoted as ``repr`` quotes it, cut after ``limit`` characters with ``…``."""
    if len(value) > limit:
        value = value[:limit] + "…"
    return repr(value)
