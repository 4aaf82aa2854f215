"""Failed sign-ins counted per key (an account, a client address), refused before the hash.

A wrong password costs one scrypt hash (16 MiB, tens of milliseconds). Without a throttle an
attacker spends the server's memory and CPU guessing, so once a key has failed ``limit``
times within ``window_s`` the next attempt is refused at once, without looking at the
password, until the oldest failure leaves the window. Counts live in the process that
answers (bucketed, constant memory per key), like the partners' request budgets; with several
API processes each throttles its own share. A success clears nothing: the failures still
count, so an account's own owner cannot be used to reset an address's budget.

Counting per account lets anyone who knows a login keep that account refused, a few guesses
per window, for as long as they like. So an address that signed in to an account with the right
password is trusted for that account (``TRUST_S``, renewed by every success): the account's
count does not refuse it, only its own address's count does. The owner keeps working from where
they signed in before while someone elsewhere fails their account; a new address waits out the
window like any other.

``begin`` and ``end`` bracket a verification whose hash runs meanwhile: attempts under way count
as failures until they end, so a burst of parallel guesses is refused as soon as it would pass
the limit instead of paying every hash first. A trusted address's own attempts are not counted
ahead, so a busy partner's requests that all miss the credential cache at once are not refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.auth.ratelimit import SlidingWindow
from keyfob.errors import ErrorCode, KeyfobError

TRUST_S = 30 * 86_400.0
"""How long a successful sign-in keeps its address trusted for that account."""


@dataclass(frozen=True, slots=True)
class Throttled:
    key: str
    retry_after: int
    """Whole seconds until one more attempt is allowed."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One verification admitted by ``LoginThrottle.begin``; give it back to ``end``."""

    login: str
    address: str | None
    counted: bool
    """Counted as a failure while under way (the address was not trusted for the login)."""


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
        self._pending: dict[str, int] = {}
        """Attempts under way per key (``begin`` without ``end``), counted as failures."""

    def check(self, key: str, *, now: float) -> Throttled | None:
        """``None`` when ``key`` may try again, else how long it must wait."""
        window = self._windows.get(key)
        failed = 0 if window is None else window.count(now)
        if failed + self._pending.get(key, 0) < self.limit:
            return None
        # Refused only for attempts under way: they end within a hash's time.
        return Throttled(
            key, 1 if window is None or failed < self.limit else window.seconds_until_free(now)
        )

    def begin(self, key: str) -> None:
        self._pending[key] = self._pending.get(key, 0) + 1

    def end(self, key: str) -> None:
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)

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

    def __init__(
        self, *, per_account: int, per_address: int, window_s: float, max_trusted: int = 100_000
    ) -> None:
        self.accounts = FailureThrottle(limit=per_account, window_s=window_s)
        self.addresses = FailureThrottle(limit=per_address, window_s=window_s)
        self._max_trusted = max_trusted
        self._trusted: dict[tuple[str, str], float] = {}
        """``(login, address)`` that signed in, and until when it is trusted (oldest first)."""

    def check(self, *, login: str, address: str | None, now: float) -> Throttled | None:
        refusals = [
            found
            for found in (
                None if self._trusts(login, address, now) else self.accounts.check(login, now=now),
                None if address is None else self.addresses.check(address, now=now),
            )
            if found is not None
        ]
        return max(refusals, key=lambda r: r.retry_after) if refusals else None

    def begin(self, *, login: str, address: str | None, now: float) -> Attempt:
        """Admit one verification, or raise 42901 ``SIGN_IN_THROTTLED`` with ``Retry-After``.

        An admitted attempt counts as a failure until ``end``, which must follow.
        """
        throttled = self.check(login=login, address=address, now=now)
        if throttled is not None:
            raise KeyfobError(
                ErrorCode.SIGN_IN_THROTTLED,
                f"too many failed sign-ins; try again in {throttled.retry_after} s",
                headers={"Retry-After": str(throttled.retry_after)},
            )
        counted = not self._trusts(login, address, now)
        if counted:
            self.accounts.begin(login)
            if address is not None:
                self.addresses.begin(address)
        return Attempt(login, address, counted)

    def end(self, attempt: Attempt, *, now: float, verified: bool | None) -> None:
        """The verification ``begin`` admitted is over: a success, a failure, or neither
        (``None``: no verdict, such as a database error)."""
        login, address = attempt.login, attempt.address
        if attempt.counted:
            self.accounts.end(login)
            if address is not None:
                self.addresses.end(address)
        if verified is True:
            self.succeed(login=login, address=address, now=now)
        elif verified is False:
            self.fail(login=login, address=address, now=now)

    def fail(self, *, login: str, address: str | None, now: float) -> None:
        self.accounts.fail(login, now=now)
        if address is not None:
            self.addresses.fail(address, now=now)

    def succeed(self, *, login: str, address: str | None, now: float) -> None:
        """A verified sign-in: ``address`` is trusted for ``login`` (failures still count)."""
        if address is None:
            return
        key = (login, address)
        self._trusted.pop(key, None)
        if len(self._trusted) >= self._max_trusted:
            for stale in [k for k, until in self._trusted.items() if until <= now]:
                del self._trusted[stale]
            if len(self._trusted) >= self._max_trusted:
                for oldest in list(self._trusted)[: self._max_trusted // 2]:
                    del self._trusted[oldest]
        self._trusted[key] = now + TRUST_S

    def _trusts(self, login: str, address: str | None, now: float) -> bool:
        until = None if address is None else self._trusted.get((login, address))
        return until is not None and until > now
