"""One log line per failed webhook POST, so an operator sees failing receivers without a query.

A successful POST logs nothing (the hot path stays quiet); a failed one logs a WARNING when
every notification it carried will be retried, and an ERROR when any was given up on
(abandoned: the policy's retries ran out; expired: the next try would fall after the horizon).
The line carries ``callback_id``, ``remote_id`` (the first notification's; ``notifications``
says how many the POST carried), ``attempt``, ``status`` or ``error``, and ``outcome``.
"""

from __future__ import annotations

import logging

from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import Abandon, Decision, Expire, Retry
from keyfob.notifications.queue import Delivery

log = logging.getLogger("keyfob.delivery")


def log_failure(delivery: Delivery, outcome: Outcome, decisions: list[Decision]) -> None:
    """Log a POST that did not deliver (nothing for one that did)."""
    if outcome.delivered:
        return
    first = delivery.rows[0]
    given_up = [d for d in decisions if isinstance(d, Abandon | Expire)]
    if given_up:
        verdict = "abandoned" if isinstance(given_up[0], Abandon) else "expired"
        level, then = logging.ERROR, f"given up ({verdict})"
    else:
        verdict, level = "retry", logging.WARNING
        retries = [d.at for d in decisions if isinstance(d, Retry)]
        then = f"retry at {min(retries).isoformat()}" if retries else "retry"
    status = outcome.status_code
    reason = f"status {status}" if status is not None else (outcome.error_class or "error")
    if log.isEnabledFor(level):
        log.log(
            level,
            "webhook delivery to callback %s failed (%s, attempt %d); %s",
            delivery.target.id,
            reason,
            first.attempts + 1,
            then,
            extra={
                "callback_id": delivery.target.id,
                "remote_id": first.remote_id,
                "attempt": first.attempts + 1,
                "status": status,
                "error": outcome.error_class,
                "outcome": verdict,
                "notifications": len(delivery.rows),
            },
        )
