"""Counts of remotes for ``/metrics``: accepted, finished, accept → Done latency, wake-ups.

The hot path only adds to plain integers in a dict (no lock, no label look-up: tens of
nanoseconds); the Prometheus families are built from them when someone scrapes, by
``collect()`` (a ``prometheus_client`` custom collector). They count what this process did:
the API process counts accepted remotes, the process that runs the dispatcher counts finished
remotes and wake-ups (both, under ``keyfob serve``).

    keyfob_remotes_accepted_total{type}                   stored by POST remote (no replays)
    keyfob_remotes_finished_total{type, status, cause}    Done events (cause "" on success)
    keyfob_remote_done_seconds{type}                      accept → Done, a histogram
    keyfob_wake_ups_total                                 wake-ups sent to vehicles
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from keyfob.remotes.progress import Planned
from keyfob.vocabulary import EventType

DONE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
"""Seconds: a car online answers in about a second; waking one takes up to minutes."""
DONE_EVENT = EventType.DONE.value


class RemoteMetrics(Collector):
    def __init__(self) -> None:
        self.accepted: dict[str, int] = {}
        self.finished: dict[tuple[str, str, str], int] = {}
        self._done: dict[str, list[int]] = {}  # per type: one count per bucket, then +Inf
        self._done_sum: dict[str, float] = {}
        self.wake_ups = 0

    # -- the hot path ---------------------------------------------------------------------

    def accept(self, remote_type: str) -> None:
        self.accepted[remote_type] = self.accepted.get(remote_type, 0) + 1

    def finish(
        self,
        remote_type: str,
        status: str,
        cause: str | None,
        accepted_at: datetime,
        done_at: datetime,
    ) -> None:
        key = (remote_type, status, cause or "")
        self.finished[key] = self.finished.get(key, 0) + 1
        seconds = max(0.0, (done_at - accepted_at).total_seconds())
        counts = self._done.get(remote_type)
        if counts is None:
            counts = self._done[remote_type] = [0] * (len(DONE_BUCKETS) + 1)
            self._done_sum[remote_type] = 0.0
        counts[bisect_left(DONE_BUCKETS, seconds)] += 1
        self._done_sum[remote_type] += seconds

    def woke(self, vehicles: int) -> None:
        self.wake_ups += vehicles

    # -- across processes (a child of ``serve`` relays what it counted) ------------------------

    def take(self) -> dict[str, Any] | None:
        """What was counted since the last call, as JSON, then forgotten; None if nothing."""
        if not (self.finished or self._done or self.wake_ups or self.accepted):
            return None
        taken = {
            "accepted": self.accepted,
            "finished": [[*key, count] for key, count in self.finished.items()],
            "done": {t: [counts, self._done_sum[t]] for t, counts in self._done.items()},
            "wake_ups": self.wake_ups,
        }
        self.accepted, self.finished, self._done, self._done_sum = {}, {}, {}, {}
        self.wake_ups = 0
        return taken

    def add(self, taken: dict[str, Any]) -> None:
        """Count here what another process's ``take`` sent back."""
        for remote_type, count in taken.get("accepted", {}).items():
            self.accepted[remote_type] = self.accepted.get(remote_type, 0) + count
        for remote_type, status, cause, count in taken.get("finished", []):
            key = (remote_type, status, cause)
            self.finished[key] = self.finished.get(key, 0) + count
        for remote_type, (counts, seconds) in taken.get("done", {}).items():
            mine = self._done.get(remote_type)
            if mine is None:
                mine = self._done[remote_type] = [0] * (len(DONE_BUCKETS) + 1)
                self._done_sum[remote_type] = 0.0
            for index, count in enumerate(counts[: len(mine)]):
                mine[index] += count
            self._done_sum[remote_type] += seconds
        self.wake_ups += int(taken.get("wake_ups", 0))

    # -- scraping -------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            "keyfob_remotes_accepted", "Remotes stored by POST remote, by type.", labels=["type"]
        )
        for remote_type, count in sorted(dict(self.accepted).items()):
            accepted.add_metric([remote_type], count)
        yield accepted
        finished = CounterMetricFamily(
            "keyfob_remotes_finished",
            "Remotes that reached Done, by type, Done status and failure cause.",
            labels=["type", "status", "cause"],
        )
        for key, count in sorted(dict(self.finished).items()):
            finished.add_metric(list(key), count)
        yield finished
        done = HistogramMetricFamily(
            "keyfob_remote_done_seconds",
            "Time from a remote's acceptance to its Done event, by type.",
            labels=["type"],
        )
        for remote_type, counts in sorted(dict(self._done).items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*DONE_BUCKETS, float("inf")), list(counts), strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            done.add_metric([remote_type], buckets, self._done_sum[remote_type])
        yield done
        yield CounterMetricFamily(
            "keyfob_wake_ups", "Wake-ups sent to vehicles.", value=self.wake_ups
        )


def count_done(metrics: RemoteMetrics | None, planned: list[Planned], now: datetime) -> None:
    """Count the remotes whose written steps (committed) ended in Done."""
    if metrics is None:
        return
    for item in planned:
        for event_type, status, cause, _ in item.step.events:
            if event_type == DONE_EVENT:
                metrics.finish(item.due.type, status, cause, item.due.created_at, now)
