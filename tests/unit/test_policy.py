"""Retry decisions for every policy, including the 72 h horizon (decision 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keyfob.errors import KeyfobError
from keyfob.notifications.outcome import Outcome, classify
from keyfob.notifications.policy import (
    HORIZON,
    Abandon,
    Decision,
    Delivered,
    Expire,
    Retry,
    RetryPolicy,
    decide,
    is_expired,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FAILED = classify(status=500, body=b"oops", latency_ms=12)
DELIVERED = classify(status=204, latency_ms=3)
TIMED_OUT = classify(error=TimeoutError(), latency_ms=10_000)

NONE = RetryPolicy("None", retry_delay=10)
BOUNDED = RetryPolicy("Bounded", retry_number=3, retry_delay=10)
ALWAYS = RetryPolicy("Always", retry_delay=10)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


CASES: list[tuple[str, RetryPolicy, int, Outcome, timedelta, Decision]] = [
    # name, policy, attempts_made, outcome, now - T0, expected
    ("none: first failure retries once", NONE, 1, FAILED, s(0), Retry(T0 + s(10))),
    ("none: the retry failing abandons", NONE, 2, FAILED, s(10), Abandon()),
    ("none: a time-out counts as a failure", NONE, 1, TIMED_OUT, s(10), Retry(T0 + s(20))),
    ("bounded: first failure", BOUNDED, 1, FAILED, s(0), Retry(T0 + s(10))),
    ("bounded: second retry", BOUNDED, 2, FAILED, s(10), Retry(T0 + s(20))),
    ("bounded: third retry", BOUNDED, 3, FAILED, s(20), Retry(T0 + s(30))),
    ("bounded: retries spent", BOUNDED, 4, FAILED, s(30), Abandon()),
    ("always: never runs out", ALWAYS, 5000, FAILED, s(50_000), Retry(T0 + s(50_010))),
    ("delivered on the first try", BOUNDED, 1, DELIVERED, s(0), Delivered()),
    ("delivered on the last retry", NONE, 2, DELIVERED, s(10), Delivered()),
    ("delivered after the horizon", ALWAYS, 9, DELIVERED, HORIZON + s(5), Delivered()),
    (
        "retry landing exactly on the horizon",
        ALWAYS,
        7,
        FAILED,
        HORIZON - s(10),
        Retry(T0 + HORIZON),
    ),
    ("retry one second past the horizon", ALWAYS, 7, FAILED, HORIZON - s(9), Expire()),
    ("always at the horizon", ALWAYS, 7, FAILED, HORIZON, Expire()),
    ("bounded with retries left expires", BOUNDED, 2, FAILED, HORIZON - s(5), Expire()),
    ("none with its retry left expires", NONE, 1, FAILED, HORIZON - s(1), Expire()),
    ("out of retries near the horizon abandons", BOUNDED, 4, FAILED, HORIZON - s(1), Abandon()),
    ("out of retries past the horizon abandons", NONE, 2, FAILED, HORIZON + s(60), Abandon()),
]


@pytest.mark.parametrize(
    ("policy", "attempts", "outcome", "elapsed", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(
    policy: RetryPolicy, attempts: int, outcome: Outcome, elapsed: timedelta, expected: Decision
) -> None:
    assert (
        decide(policy, attempts_made=attempts, outcome=outcome, raised_at=T0, now=T0 + elapsed)
        == expected
    )


def test_retry_is_counted_from_the_failed_attempt_not_from_the_event() -> None:
    slow = RetryPolicy("Bounded", retry_number=5, retry_delay=60)
    now = T0 + s(3600)
    assert decide(slow, attempts_made=2, outcome=FAILED, raised_at=T0, now=now) == Retry(
        now + s(60)
    )


def test_a_shorter_horizon_can_be_given() -> None:
    decision = decide(
        ALWAYS,
        attempts_made=3,
        outcome=FAILED,
        raised_at=T0,
        now=T0 + s(55),
        horizon=timedelta(minutes=1),
    )
    assert decision == Expire()


def walk(policy: RetryPolicy) -> tuple[int, Decision]:
    """Attempts made, and the final decision, for a receiver that always fails."""
    now, attempts = T0, 0
    while True:
        attempts += 1
        decision = decide(policy, attempts_made=attempts, outcome=FAILED, raised_at=T0, now=now)
        if not isinstance(decision, Retry):
            return attempts, decision
        assert decision.at > now
        now = decision.at


@pytest.mark.parametrize(
    ("policy", "attempts", "final"),
    [
        (RetryPolicy("None", retry_delay=30), 2, Abandon()),
        (RetryPolicy("Bounded", retry_number=3, retry_delay=10), 4, Abandon()),
        (RetryPolicy("Bounded", retry_number=1, retry_delay=10), 2, Abandon()),
        # One attempt an hour: T0, T0+1h, ... T0+72h, then the next one would be too late.
        (RetryPolicy("Always", retry_delay=3600), 73, Expire()),
        # 100 retries a day apart cannot all fit in three days.
        (RetryPolicy("Bounded", retry_number=100, retry_delay=86_400), 4, Expire()),
    ],
    ids=["none", "bounded-3", "bounded-1", "always-hourly", "bounded-daily"],
)
def test_a_receiver_that_never_answers(policy: RetryPolicy, attempts: int, final: Decision) -> None:
    assert walk(policy) == (attempts, final)


def test_defaults_are_the_contract_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.kind, policy.retry_number, policy.retry_delay) == ("Bounded", 3, 10)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "Sometimes"}, "retryPolicy.policy"),
        ({"retry_number": 0}, "retryPolicy.retryNumber"),
        ({"retry_delay": 0}, "retryPolicy.retryDelay"),
        ({"retry_delay": 2.5}, "retryPolicy.retryDelay"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert field in caught.value.message


def test_attempts_must_be_counted_from_one() -> None:
    with pytest.raises(KeyfobError, match="attempts_made"):
        decide(NONE, attempts_made=0, outcome=FAILED, raised_at=T0, now=T0)


def test_is_expired_boundary() -> None:
    assert not is_expired(T0, T0 + HORIZON)
    assert is_expired(T0, T0 + HORIZON + s(0.001))
