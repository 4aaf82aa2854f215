"""Prometheus numbers for webhook delivery, in a registry of their own.

Each ``DeliveryMetrics`` owns its ``CollectorRegistry`` instead of the process-wide default, so
several apps in one process (and every test) count separately and never clash on names. Whoever
mounts ``/metrics`` serves ``render()``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import Abandon, Decision, Expire

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DeliveryMetrics:
    """Counters and gauges of the delivery worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "keyfob_webhook_deliveries",
            "Webhook attempts and final give-ups, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.attempt_latency = Histogram(
            "keyfob_webhook_attempt_seconds",
            "Time from sending a webhook request to having its answer.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "keyfob_webhook_queue_depth",
            "Notifications waiting to be delivered.",
            registry=self.registry,
        )
        self.oldest_due_age = Gauge(
            "keyfob_webhook_oldest_due_age_seconds",
            "How long the oldest due notification has been waiting.",
            registry=self.registry,
        )
        for label in ("delivered", "failed", "abandoned", "expired"):
            self.deliveries.labels(outcome=label)

    def observe_attempt(self, outcome: Outcome) -> None:
        """One attempt: counted as delivered or failed, and its latency recorded."""
        self.deliveries.labels(outcome="delivered" if outcome.delivered else "failed").inc()
        self.attempt_latency.observe(outcome.latency_ms / 1000)

    def observe_decision(self, decision: Decision) -> None:
        """A give-up after the policy's verdict (deliveries and retries are counted per attempt)."""
        if isinstance(decision, Abandon):
            self.deliveries.labels(outcome="abandoned").inc()
        elif isinstance(decision, Expire):
            self.deliveries.labels(outcome="expired").inc()

    def observe_expired(self, count: int) -> None:
        """Rows that reached the 72 h horizon unsent (held, or due too late): give-ups too."""
        self.deliveries.labels(outcome="expired").inc(count)

    def set_queue(self, depth: int, oldest_due_age_seconds: float) -> None:
        self.queue_depth.set(depth)
        self.oldest_due_age.set(max(0.0, oldest_due_age_seconds))

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for a ``/metrics`` endpoint."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
