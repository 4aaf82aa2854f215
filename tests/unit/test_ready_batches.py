"""Cutting a callback's claimable rows into the batches that may leave in one claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keyfob.notifications.queue import Claimed, ready_batches

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=30)


def row(remote: str, seq: int = 1, *, at: float = 0) -> Claimed:
    return Claimed(
        id=f"{remote}-{seq}",
        callback_id="cb",
        remote_id=remote,
        seq=seq,
        event="{}",
        attempts=0,
        raised_at=T0 + timedelta(seconds=at),
    )


def keys(batches: list[list[Claimed]]) -> list[list[str]]:
    return [[r.id for r in batch] for batch in batches]


def test_every_full_batch_leaves_and_a_young_remainder_waits() -> None:
    rows = [row(f"r{n}", at=n) for n in range(7)]
    found = ready_batches(rows, size=3, window=WINDOW, now=T0 + timedelta(seconds=10))
    assert keys(found) == [["r0-1", "r1-1", "r2-1"], ["r3-1", "r4-1", "r5-1"]]


def test_the_remainder_leaves_once_its_oldest_row_has_waited_the_window() -> None:
    rows = [row(f"r{n}", at=n) for n in range(5)]
    not_yet = ready_batches(rows, size=3, window=WINDOW, now=T0 + timedelta(seconds=32.9))
    due = ready_batches(rows, size=3, window=WINDOW, now=T0 + timedelta(seconds=33))
    assert keys(not_yet) == [["r0-1", "r1-1", "r2-1"]]
    assert keys(due) == [["r0-1", "r1-1", "r2-1"], ["r3-1", "r4-1"]]


def test_events_of_one_remote_share_a_batch_in_order() -> None:
    rows = [row("a", 1), row("a", 2), row("b", 1)]
    found = ready_batches(rows, size=3, window=WINDOW, now=T0)
    assert keys(found) == [["a-1", "a-2", "b-1"]]


def test_a_remote_already_in_a_batch_keeps_its_later_events_for_a_later_claim() -> None:
    """Batches of one claim travel side by side: a-3 in the second could overtake a-2."""
    rows = [row("a", 1), row("a", 2), row("a", 3), row("b", 1), row("c", 1), row("a", 4)]
    found = ready_batches(rows, size=2, window=WINDOW, now=T0)
    assert keys(found) == [["a-1", "a-2"], ["b-1", "c-1"]]


def test_nothing_is_ready_when_no_batch_is_full_and_the_window_is_not_up() -> None:
    rows = [row("a", at=1), row("b", at=2)]
    assert ready_batches(rows, size=5, window=WINDOW, now=T0 + timedelta(seconds=30)) == []
    assert ready_batches([], size=5, window=WINDOW, now=T0) == []
