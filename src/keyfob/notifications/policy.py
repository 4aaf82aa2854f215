"""When a failed notification is tried again: retry as a value (decision 4).

The worker records an attempt, then asks ``decide`` what to do with the notification. Keeping the
answer a plain value, computed from the policy, the attempt count and two instants, lets the
worker stay a thin loop and lets tests walk through three days of retries without sleeping.

    attempt ──► delivered? ── yes ──► Delivered
                    │ no
                    ▼
           retries left? ── no ──► Abandon   (kept in the log, replayable; callback stays Running)
                    │ yes
                    ▼
      now + retry_delay after raised_at + horizon? ── yes ──► Expire  (callback becomes Failed)
                    │ no
                    ▼
              Retry(at = now + retry_delay)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications.outcome import Outcome

HORIZON = timedelta(hours=72)
"""No notification is retried later than this after its event was raised (both APIs)."""

PolicyKind = Literal["None", "Bounded", "Always"]
_KINDS: tuple[str, ...] = get_args(PolicyKind)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A callback's ``retryPolicy``: defaults are the contract's (3 retries, 10 s apart)."""

    kind: PolicyKind = "Bounded"
    retry_number: int = 3
    retry_delay: int = 10

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise KeyfobError(
                ErrorCode.INVALID_BODY,
                f"retryPolicy.policy must be one of {', '.join(_KINDS)}, got {self.kind!r}",
            )
        if isinstance(self.retry_number, bool) or not isinstance(self.retry_number, int):
            raise KeyfobError(ErrorCode.INVALID_BODY, "retryPolicy.retryNumber must be an integer")
        if isinstance(self.retry_delay, bool) or not isinstance(self.retry_delay, int):
            raise KeyfobError(ErrorCode.INVALID_BODY, "retryPolicy.retryDelay must be an integer")
        if self.retry_number < 1:
            raise KeyfobError(
                ErrorCode.INVALID_BODY,
                f"retryPolicy.retryNumber must be at least 1, got {self.retry_number}",
            )
        if self.retry_delay < 1:
            raise KeyfobError(
                ErrorCode.INVALID_BODY,
                f"retryPolicy.retryDelay must be at least 1 second, got {self.retry_delay}",
            )

    @property
    def max_retries(self) -> int | None:
        """Retries allowed after the first attempt; ``None`` means no count limit."""
        if self.kind == "None":
            return 1
        if self.kind == "Bounded":
            return self.retry_number
        return None


B2C_POLICY = RetryPolicy("Always", retry_delay=10)
"""The fixed B2C platform policy: every 10 s until the horizon."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The receiver answered 2XX: nothing more to do."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again at ``at``."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Abandon:
    """The policy's retries ran out before the horizon."""


@dataclass(frozen=True, slots=True)
class Expire:
    """A further retry would fall after the horizon."""


Decision = Delivered | Retry | Abandon | Expire


def deadline(raised_at: datetime, horizon: timedelta = HORIZON) -> datetime:
    """The last instant at which a notification raised at ``raised_at`` may still be tried."""
    return raised_at + horizon


def is_expired(raised_at: datetime, now: datetime, horizon: timedelta = HORIZON) -> bool:
    """True once ``now`` is past the horizon: for rows held (Paused) or claimed too late."""
    return now > deadline(raised_at, horizon)


def decide(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    outcome: Outcome,
    raised_at: datetime,
    now: datetime,
    horizon: timedelta = HORIZON,
) -> Decision:
    """What follows an attempt; ``attempts_made`` counts the attempt that produced ``outcome``."""
    if attempts_made < 1:
        raise KeyfobError(
            ErrorCode.INTERNAL, f"attempts_made must be at least 1, got {attempts_made}"
        )
    if outcome.delivered:
        return Delivered()
    retries_made = attempts_made - 1
    limit = policy.max_retries
    if limit is not None and retries_made >= limit:
        return Abandon()
    at = now + timedelta(seconds=policy.retry_delay)
    if at > deadline(raised_at, horizon):
        return Expire()
    return Retry(at=at)
