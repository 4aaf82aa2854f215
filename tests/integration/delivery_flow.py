"""One webhook delivery scenario end to end: app, tenant, real receiver, worker, injected clock.

The delivery tests all need the same stage (a callback pointing at a local receiver, remotes
posted through the API, later events recorded the way the dispatcher records them, and a worker
driven one cycle at a time), so it is built here once and each test only states its story.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from conftest import Tenant, make_settings, make_tenant
from delivery_support import Receiver, drain, receiver
from keyfob.api.app import create_app
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import FakeClock
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.remotes.events import RemoteRef, record_event
from keyfob.remotes.models import remotes
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicles
from keyfob.vocabulary import EventType

DOORS = {"door": {"state": "Locked"}}


@dataclass
class Flow:
    app: Any
    db: Database
    clock: FakeClock
    tenant: Tenant
    hook: Receiver
    work: DeliveryWorker

    # -- the public API, as a partner calls it ----------------------------------------------

    def path(self, callback_id: str) -> str:
        return f"{self.tenant.fleet}/remote/callbacks/{callback_id}"

    async def callback(
        self,
        target: str | None = None,
        *,
        attributes: list[dict[str, str]] | None = None,
        remote_types: list[str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a callback (to the receiver unless ``target`` says otherwise); its CallbackRef."""
        webhook: dict[str, Any] = {"target": target or self.hook.url, "name": "hook"}
        if attributes is not None:
            webhook["attributes"] = attributes
        body = {
            "callback": {"webhook": webhook},
            "remoteTypes": remote_types or ["Doors", "Horn", "Lights"],
            **extra,
        }
        answer = await self.tenant.http.post(f"{self.tenant.fleet}/remote/callbacks", json=body)
        assert answer.status_code == 200, answer.text
        created: dict[str, Any] = answer.json()
        return created

    async def remote(
        self, callback_id: str, vehicle: str = "Electric", body: dict[str, Any] | None = None
    ) -> str:
        """POST a remote through the callback (its Accepted event is queued); its id."""
        vid = self.tenant.vehicles[vehicle].id
        answer = await self.tenant.http.post(
            f"{self.tenant.fleet}/vehicles/{vid}/callbacks/{callback_id}/remotes",
            json=body or DOORS,
        )
        assert answer.status_code == 202, answer.text
        remote_id: str = answer.json()["remoteActionId"]
        return remote_id

    async def set_status(self, callback_id: str, status: str) -> None:
        answer = await self.tenant.http.put(
            self.path(callback_id) + "/status", json={"status": status}
        )
        assert answer.status_code == 202, answer.text

    async def status_of(self, callback_id: str) -> str:
        answer = await self.tenant.http.get(self.path(callback_id))
        assert answer.status_code == 200, answer.text
        status: str = answer.json()["status"]
        return status

    async def deliveries(self, callback_id: str, **params: str) -> list[dict[str, Any]]:
        answer = await self.tenant.http.get(self.path(callback_id) + "/deliveries", params=params)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["_embedded"]["deliveries"]
        return found

    async def delivery(self, callback_id: str, notification_id: str) -> dict[str, Any]:
        answer = await self.tenant.http.get(
            f"{self.path(callback_id)}/deliveries/{notification_id}"
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    # -- what the dispatcher does -----------------------------------------------------------

    async def pending(self, remote_id: str, status: str) -> None:
        """Record a further Pending event of the remote, at the clock's time."""
        await self._record(remote_id, EventType.PENDING, status)

    async def done(
        self,
        remote_id: str,
        status: str = "Success",
        *,
        failure_cause: str | None = None,
        feedback_detail: str | None = None,
    ) -> None:
        """Record the final Done event; the remote leaves the dispatcher's active phases."""
        await self._record(
            remote_id,
            EventType.DONE,
            status,
            failure_cause=failure_cause,
            feedback_detail=feedback_detail,
            remote_changes={"phase": "done"},
        )

    async def _record(
        self, remote_id: str, event_type: EventType, status: str, **options: Any
    ) -> None:
        async with self.db.transaction() as conn:
            await record_event(
                conn,
                remote=await remote_ref(conn, remote_id),
                event_type=event_type,
                status=status,
                now=self.clock(),
                **options,
            )

    # -- the worker -------------------------------------------------------------------------

    async def drain(self) -> int:
        """Run worker cycles until nothing is due; POSTs made."""
        return await drain(self.work)

    async def after(self, seconds: float) -> int:
        """Move the clock on, then drain; POSTs made."""
        self.clock.advance(seconds)
        return await self.drain()

    # -- the database, for what the API no longer shows (deleted callbacks) -----------------

    async def states(self, callback_id: str) -> list[str]:
        async with self.db.read() as conn:
            found = await conn.execute(
                select(notifications.c.state)
                .where(notifications.c.callback_id == callback_id)
                .order_by(notifications.c.raised_at, notifications.c.seq)
            )
            return list(found.scalars())

    async def attempt_times(self, callback_id: str) -> list[datetime]:
        async with self.db.read() as conn:
            found = await conn.execute(
                select(delivery_attempts.c.started_at)
                .where(delivery_attempts.c.callback_id == callback_id)
                .order_by(delivery_attempts.c.started_at, delivery_attempts.c.id)
            )
            return list(found.scalars())


async def remote_ref(conn: AsyncConnection, remote_id: str) -> RemoteRef:
    """The remote as ``record_event`` takes it, read in the caller's transaction."""
    row = (
        await conn.execute(
            select(remotes.c.callback_id, remotes.c.type, remotes.c.last_seq, vehicles.c.vin)
            .join(vehicles, vehicles.c.id == remotes.c.vehicle_id)
            .where(remotes.c.id == remote_id)
        )
    ).one()
    return RemoteRef(remote_id, row.callback_id, row.vin, row.type, row.last_seq)


def event_keys(request: dict[str, Any]) -> list[tuple[str, int]]:
    """``(remoteActionId, sequence)`` of every event one request carried, in order."""
    return [(e["remoteActionId"], e["sequence"]) for e in request["json"]["events"]]


@asynccontextmanager
async def delivery_flow(
    db: Database,
    clock: FakeClock,
    *,
    delivery: dict[str, Any] | None = None,
    policy: TargetPolicy | None = None,
    resolver: Any = None,
    metrics: DeliveryMetrics | None = None,
    timeout: float = 2.0,
    limit_per_host: int = 20,
    **options: Any,
) -> AsyncIterator[Flow]:
    """The stage: the app allows private webhooks unless ``delivery`` says otherwise.

    ``policy``, ``resolver``, ``timeout`` and ``limit_per_host`` go to the worker's sender;
    ``metrics`` is shared by the worker, the sender and the app's ``/metrics``; ``options`` are
    ``WorkerOptions``.
    """
    settings = make_settings(db.url, delivery={"allow_private_webhooks": True, **(delivery or {})})
    app = create_app(settings, database=db, clock=clock, announce=lambda _: None)
    if metrics is not None:
        app.state.ctx.metrics = metrics
    sender = WebhookSender(
        policy or TargetPolicy(allow_private=True),
        timeout=timeout,
        limit_per_host=limit_per_host,
        resolver=resolver,
        metrics=metrics,
    )
    work = DeliveryWorker(
        db, sender, clock=clock, options=WorkerOptions(**options), metrics=metrics
    )
    async with app.router.lifespan_context(app), receiver() as hook:
        tenant = await make_tenant(app, db, "alice", clock())
        try:
            yield Flow(app, db, clock, tenant, hook, work)
        finally:
            await tenant.http.aclose()
            await sender.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """A one-route local server for answers the standard receiver does not give; its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
