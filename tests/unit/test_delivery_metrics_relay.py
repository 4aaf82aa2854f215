"""The delivery child counts its attempts; ``serve``'s /metrics shows what it would show had
the worker run inside ``serve``."""

from __future__ import annotations

import orjson
from prometheus_client import generate_latest

from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import Abandon
from keyfob.runtime.worker_child import RelayedMetrics, apply_observed


def _outcome(delivered: bool, latency_ms: int) -> Outcome:
    status = 200 if delivered else 503
    return Outcome(delivered, status, None, latency_ms, None)


def _families(metrics: DeliveryMetrics) -> str:
    text = generate_latest(metrics.registry).decode()
    return "\n".join(line for line in text.splitlines() if "_created" not in line)


def test_the_parent_counts_the_childs_attempts_as_if_they_were_its_own() -> None:
    child, parent, alone = RelayedMetrics(), DeliveryMetrics(), DeliveryMetrics()
    attempts = [_outcome(True, 12), _outcome(True, 480), _outcome(False, 3100), _outcome(True, 2)]
    for outcome in attempts:
        child.observe_attempt(outcome)
        alone.observe_attempt(outcome)
    child.observe_decision(Abandon())
    alone.observe_decision(Abandon())
    taken = child.take()
    assert taken is not None
    apply_observed(parent, orjson.loads(orjson.dumps(taken)))  # as it crosses the pipe
    assert _families(parent) == _families(alone)
    assert 'keyfob_webhook_deliveries_total{outcome="delivered"} 3.0' in _families(parent)
    assert 'keyfob_webhook_deliveries_total{outcome="failed"} 1.0' in _families(parent)
    assert "keyfob_webhook_attempt_seconds_count 4.0" in _families(parent)
    assert child.take() is None  # what was taken is not sent again
