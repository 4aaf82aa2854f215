"""``Keyfob-Not-Before`` and ``Keyfob-Expires-At``: when a remote may start, and until when.

Both are optional request headers of POST remote (an extension, docs/extensions.md) holding an
RFC 3339 date-time with its offset (``2026-03-10T18:00:00Z``). A remote waits, queued and
spending no wake-up, until ``not_before`` (a past time means now); a remote not sent to its
vehicle by ``expires_at`` ends ``Done`` / ``Failed`` ``VehicleConnectionTimeout``, the
contract's cause for a car not reached in the time allowed (``lifecycle``: never started or
sent after it, and a wake-up waits no longer than it).

A header that is not such a date-time, an expiry that is not in the future or not after the
not-before time, or either more than ``MAX_AHEAD`` away, is a 400 ``BAD_REQUEST`` naming the
header; nothing is stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.staging import ANY_TIME, TimeWindow

EXPIRES_HEADER = "Keyfob-Expires-At"
NOT_BEFORE_HEADER = "Keyfob-Not-Before"
MAX_AHEAD = timedelta(days=31)


def _moment(header: str, value: str) -> datetime:
    try:
        found = datetime.fromisoformat(value.strip())
    except ValueError:
        found = None
    if found is None or found.tzinfo is None or "T" not in value.upper():
        raise KeyfobError(
            ErrorCode.BAD_REQUEST,
            f"{header} must be an RFC 3339 date-time with its offset, "
            f"such as 2026-03-10T18:00:00Z; got {value[:64]!r}",
        )
    return found


def time_window(expires_at: str | None, not_before: str | None, *, now: datetime) -> TimeWindow:
    """The window the headers give (``ANY_TIME`` when neither is sent), checked against now."""
    if expires_at is None and not_before is None:
        return ANY_TIME
    start = None if not_before is None else _moment(NOT_BEFORE_HEADER, not_before)
    end = None if expires_at is None else _moment(EXPIRES_HEADER, expires_at)
    horizon = now + MAX_AHEAD
    for header, moment in ((NOT_BEFORE_HEADER, start), (EXPIRES_HEADER, end)):
        if moment is not None and moment > horizon:
            raise KeyfobError(ErrorCode.BAD_REQUEST, f"{header} must be at most 31 days ahead")
    if end is not None and end <= now:
        raise KeyfobError(ErrorCode.BAD_REQUEST, f"{EXPIRES_HEADER} must be in the future")
    if start is not None and end is not None and end <= start:
        raise KeyfobError(
            ErrorCode.BAD_REQUEST, f"{EXPIRES_HEADER} must be after {NOT_BEFORE_HEADER}"
        )
    if start is not None and start <= now:
        start = None  # a time already past: due now, as without the header
    return TimeWindow(not_before=start, expires_at=end)
