"""A child of ``serve`` counts finished remotes; ``serve``'s /metrics shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from keyfob.remotes.metrics import RemoteMetrics


def scraped(metrics: RemoteMetrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


def test_what_a_child_counted_is_counted_once_by_the_parent() -> None:
    child, parent, alone = RemoteMetrics(), RemoteMetrics(), RemoteMetrics()
    start = datetime(2026, 12, 4, tzinfo=UTC)
    for metrics in (child, alone):
        metrics.finish("Horn", "Success", None, start, start + timedelta(seconds=0.3))
        metrics.finish("Horn", "Failed", "TooManyRequestSent", start, start + timedelta(seconds=2))
        metrics.woke(3)
    taken = child.take()
    assert taken is not None
    parent.add(json.loads(json.dumps(taken)))  # as it crosses the pipe
    assert scraped(parent) == scraped(alone)
    assert child.take() is None  # what was taken is not sent again
    parent.add(taken)  # a second relay adds to the first
    assert 'keyfob_remotes_finished_total{cause="",status="Success",type="Horn"} 2.0' in scraped(
        parent
    )
    assert "keyfob_wake_ups_total 6.0" in scraped(parent)
