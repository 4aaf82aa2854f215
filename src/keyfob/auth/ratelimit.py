"""Per-partner request budgets (§9.1): a sliding day window and a one-second burst window.

Counts live in the process that answers (bucketed, so memory stays constant however busy a
partner is). With several API processes each enforces the budget on its own share of traffic.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


class SlidingWindow:
    """Counts events over the last ``window_s`` seconds in ``buckets`` equal slices."""

    def __init__(self, window_s: float, buckets: int) -> None:
        self.window_s = window_s
        self.slice_s = window_s / buckets
        self._slices: deque[tuple[int, int]] = deque()  # (slice index, count)
        self._total = 0

    def _expire(self, now: float) -> None:
        current = int(now // self.slice_s)
        oldest_kept = current - round(self.window_s / self.slice_s) + 1
        while self._slices and self._slices[0][0] < oldest_kept:
            self._total -= self._slices.popleft()[1]

    def count(self, now: float) -> int:
        self._expire(now)
        return self._total

    def add(self, now: float) -> None:
        index = int(now // self.slice_s)
        if self._slices and self._slices[-1][0] == index:
            self._slices[-1] = (index, self._slices[-1][1] + 1)
        else:
            self._slices.append((index, 1))
        self._total += 1

    def seconds_until_free(self, now: float) -> int:
        """Seconds until the oldest counted slice leaves the window (at least 1)."""
        self._expire(now)
        if not self._slices:
            return 0
        leaves_at = (self._slices[0][0] + 1) * self.slice_s + self.window_s - self.slice_s
        return max(1, math.ceil(leaves_at - now))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    day_limit: int
    day_remaining: int
    burst_limit: int
    burst_remaining: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit-1": str(self.day_limit),
            "X-RateLimit-Remaining-1": str(self.day_remaining),
            "X-RateLimit-Limit-2": str(self.burst_limit),
            "X-RateLimit-Remaining-2": str(self.burst_remaining),
        }
        if not self.allowed:
            headers["X-RateLimit-Reset"] = str(self.retry_after)
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[SlidingWindow, SlidingWindow]] = {}

    def check(self, key: str, *, day_limit: int, burst_limit: int, now: float) -> Verdict:
        """Count one request for ``key`` if it fits both budgets."""
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = (SlidingWindow(86_400, 1_440), SlidingWindow(1.0, 10))
        day, burst = windows
        day_used, burst_used = day.count(now), burst.count(now)
        if day_used >= day_limit or burst_used >= burst_limit:
            wait = max(
                day.seconds_until_free(now) if day_used >= day_limit else 0,
                burst.seconds_until_free(now) if burst_used >= burst_limit else 0,
            )
            return Verdict(
                False,
                day_limit,
                max(0, day_limit - day_used),
                burst_limit,
                max(0, burst_limit - burst_used),
                wait,
            )
        day.add(now)
        burst.add(now)
        return Verdict(
            True, day_limit, day_limit - day_used - 1, burst_limit, burst_limit - burst_used - 1, 0
        )
