"""Failed sign-ins counted per key (an account, a client address), refused before the hash.

A wrong password costs one scrypt hash (16 MiB, tens of milliseconds). Without a throttle an
attacker spends the server's memory and CPU guessing, so once a key has failed ``limit``
times within ``window_s`` the next attempt is refused at once, without looking at the
password, until the oldest failure leaves the window. Counts live in the process that
answers (bucketed, constant memory per key), like the partners' request budgets; with several
API processes each throttles its own share. A success clears nothing: the failures still
count, so an account's own owner cannot be used to reset an address's budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.auth.ratelimit import SlidingWindow


@dataclass(frozen=True, slots=True)
class Throttled:
    key: str
    retry_after: int
    """Whole seconds until one more attempt is allowed."""


class FailureThrottle:
    """``check`` before paying for a verification, ``fail`` after one that failed."""

    def __init__(
        self, *, limit: int, window_s: float, buckets: int = 30, max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._buckets = buckets
        self._max_keys = max_keys
        self._windows: dict[str, SlidingWindow] = {}

    def check(self, key: str, *, now: float) -> Throttled | None:
        """``None`` when ``key`` may try again, else how long it must wait."""
        window = self._windows.get(key)
        if window is None or window.count(now) < self.limit:
            return None
        return Throttled(key, window.seconds_until_free(now))

    def fail(self, key: str, *, now: float) -> None:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self._max_keys:
                self._forget_idle(now)
            window = self._windows[key] = SlidingWindow(self.window_s, self._buckets)
        window.add(now)

    def __len__(self) -> int:
        """Keys remembered (bounded by ``max_keys``)."""
        return len(self._windows)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if w.count(now) == 0]:
            del self._windows[key]
        if len(self._windows) >= self._max_keys:
            # Every key is busy: an attack on many keys at once. Forget the oldest half.
            for key in list(self._windows)[: self._max_keys // 2]:
                del self._windows[key]


class LoginThrottle:
    """Failed sign-ins per account and per client address, each with its own limit."""

    def __init__(self, *, per_account: int, per_address: int, window_s: float) -> None:
        self.accounts = FailureThrottle(limit=per_account, window_s=window_s)
        self.addresses = FailureThrottle(limit=per_address, window_s=window_s)

    def check(self, *, login: str, address: str | None, now: float) -> Throttled | None:
        refusals = [
            found
            for found in (
                self.accounts.check(login, now=now),
                None if address is None else self.addresses.check(address, now=now),
            )
            if found is not None
        ]
        return max(refusals, key=lambda r: r.retry_after) if refusals else None

    def fail(self, *, login: str, address: str | None, now: float) -> None:
        self.accounts.fail(login, now=now)
        if address is not None:
            self.addresses.fail(address, now=now)
