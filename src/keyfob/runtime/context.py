"""The application context: every long-lived object a process shares, typed, built once.

``build_context(settings)`` makes it at the entry point (``keyfob serve``, ``keyfob worker``,
``keyfob dispatcher``); the HTTP handlers read it through ``api.deps``, and the roles add what
they start (the ``wakers`` the API calls after accepting, the simulated ``fleet``). Nothing here
is looked up by name: a new shared object is a new field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from keyfob.auth.authority import UserAuth
from keyfob.auth.ratelimit import RateLimiter
from keyfob.auth.service import CredentialCache
from keyfob.auth.throttle import LoginThrottle
from keyfob.callbacks.targets import TargetPolicy
from keyfob.config import RateLimitSettings, Settings
from keyfob.kit.clock import Clock, utcnow
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.remotes.accept import Acceptor
from keyfob.remotes.dispatcher import Deliverer
from keyfob.remotes.metrics import RemoteMetrics
from keyfob.runtime.gauges import ScrapeGauges
from keyfob.sim.fleet import Fleet
from keyfob.store.engine import Database, Timeouts, is_sqlite

Waker = Callable[[], None]
ReadyCheck = Callable[[], str | None]
"""``None`` while a started role works; else why it does not (a sentence for ``/ready``)."""


@dataclass
class AppContext:
    settings: Settings
    database: Database
    clock: Clock
    target_policy: TargetPolicy
    acceptor: Acceptor
    user_auth: UserAuth
    """The user face's tokens: keys, revocations, verified-token cache, sign-in throttle."""
    credentials: CredentialCache = field(default_factory=CredentialCache)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    partner_logins: LoginThrottle = field(
        default_factory=lambda: partner_logins(RateLimitSettings())
    )
    """Failed fleet-face logins (``api.access``), sized by ``[rate_limit]``."""
    metrics: DeliveryMetrics = field(default_factory=DeliveryMetrics)
    """The registry ``/metrics`` serves: delivery's families, ``remote_metrics``, ``gauges``."""
    remote_metrics: RemoteMetrics = field(default_factory=RemoteMetrics)
    gauges: ScrapeGauges | None = None
    """Database-wide gauges read when ``/metrics`` is scraped (cached briefly)."""
    wakers: list[Waker] = field(default_factory=list)
    """Called after work is stored: the dispatcher and the delivery worker in this process."""
    delivery_wakers: list[Waker] = field(default_factory=list)
    """Called after remote events are stored (by the API or the dispatcher): delivery only."""
    stream_wakers: list[Waker] = field(default_factory=list)
    """Called whenever remote events are stored here: the event streams' reader."""
    deliverer: Deliverer | None = None
    """The delivery worker of this process, when it takes the dispatcher's notifications
    without claiming them (``delivery.inline``; ``notifications.handover``)."""
    fleet: Fleet | None = None
    """The in-process simulated fleet, when ``serve`` runs one on the memory link."""
    checks: dict[str, ReadyCheck] = field(default_factory=dict)
    """What each started role needs to work (its loop alive, its broker connection), by name;
    ``/ready`` answers 503 while any of them says why not. A role removes its own on exit."""

    def wake(self) -> None:
        for waker in self.wakers:
            waker()
        self.wake_delivery()

    def wake_delivery(self) -> None:
        for waker in self.delivery_wakers:
            waker()
        for waker in self.stream_wakers:
            waker()

    def wake_accepted(self) -> None:
        """Remotes were accepted: the dispatchers and the event streams; the delivery
        workers too, unless dispatchers hand them the Accepted events (``delivery.inline``):
        a worker woken now would race its dispatcher for them, with a claim of its own."""
        for waker in self.wakers:
            waker()
        for waker in self.stream_wakers:
            waker()
        if not inline(self.settings):
            for waker in self.delivery_wakers:
                waker()

    def not_ready(self) -> list[str]:
        """Why the started roles cannot work now (empty when they all can)."""
        return [reason for check in list(self.checks.values()) if (reason := check())]


def inline(settings: Settings) -> bool:
    """``delivery.inline``, or its default for the database (see the setting)."""
    chosen = settings.delivery.inline
    return is_sqlite(settings.db) if chosen is None else chosen


def running_check(task: asyncio.Task[object], what: str) -> ReadyCheck:
    """A role's main loop: ready while its task runs."""
    return lambda: f"{what} stopped" if task.done() else None


def partner_logins(limits: RateLimitSettings) -> LoginThrottle:
    return LoginThrottle(
        per_account=limits.login_failures,
        per_address=limits.login_failures_per_address,
        window_s=limits.login_window_s,
    )


def target_policy(settings: Settings) -> TargetPolicy:
    return TargetPolicy(
        allow_hosts=frozenset(h.lower() for h in settings.delivery.allowed_hosts),
        allow_private=settings.delivery.allow_private_webhooks,
    )


def db_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        connect=settings.db_connect_timeout_s,
        statement=settings.db_statement_timeout_s,
        pool=settings.db_pool_timeout_s,
        busy=settings.db_busy_timeout_s,
    )


def build_context(
    settings: Settings, *, database: Database | None = None, clock: Clock = utcnow
) -> AppContext:
    db = database or Database(
        settings.db,
        pool_size=settings.db_pool_size,
        timeouts=db_timeouts(settings),
        retry_after_s=settings.db_retry_after_s,
        sqlite_synchronous=settings.db_sqlite_synchronous,
        checkpoint_every_s=settings.db_sqlite_checkpoint_every_s,
    )
    metrics, remote_metrics = DeliveryMetrics(), RemoteMetrics()
    metrics.registry.register(remote_metrics)
    return AppContext(
        settings=settings,
        database=db,
        clock=clock,
        target_policy=target_policy(settings),
        acceptor=Acceptor(
            db,
            clock=clock,
            idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_s),
            metrics=remote_metrics,
        ),
        user_auth=UserAuth(settings, db, clock=clock),
        partner_logins=partner_logins(settings.rate_limit),
        metrics=metrics,
        remote_metrics=remote_metrics,
        gauges=ScrapeGauges(db, metrics.registry, clock=clock),
    )
