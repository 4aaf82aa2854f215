"""The stage of the user face's callback, remote and delivery tests.

An app on one engine (private webhooks allowed, so a local receiver can be the target), a
partner's fleet of three vehicles, an end user owning two of them and signed in for real
(``user_support.make_user``), a webhook receiver and a delivery worker driven one cycle at a
time on the injected clock. Tests state their story with the helpers below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from conftest import Tenant, make_settings, make_tenant
from delivery_support import Receiver, drain, receiver
from keyfob.api.app import create_app
from keyfob.auth.clients import create_client
from keyfob.auth.scopes import ALL_SCOPES
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import FakeClock
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.runtime.context import AppContext
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from user_support import REDIRECT_URI, UserLogin, make_user, sign_in, user_http

V4 = "/connectedcar/v4"
BASE = f"https://keyfob.test{V4}"
DOORS = {"door": {"state": "Locked"}}


@dataclass
class Stage:
    app: Any
    db: Database
    clock: FakeClock
    tenant: Tenant
    """The partner whose fleet holds the vehicles (and who may try the user face)."""
    user: UserLogin
    http: httpx.AsyncClient
    """The user's client: Bearer token, realm and client_id on every request."""
    hook: Receiver
    work: DeliveryWorker

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    def vehicle(self, motorization: str = "Electric") -> str:
        return self.tenant.vehicles[motorization].id

    # -- more callers -----------------------------------------------------------------

    async def another_user(
        self, *, vehicles: Iterable[str] = (), scopes: Iterable[str] = ALL_SCOPES
    ) -> tuple[UserLogin, httpx.AsyncClient]:
        found = await make_user(self.ctx, vehicle_ids=list(vehicles), scopes=scopes)
        return found, user_http(self.app, found)

    async def same_user_other_client(self) -> httpx.AsyncClient:
        """The same user, signed in through a second OAuth client."""
        async with self.db.transaction() as conn:
            new = await create_client(
                conn,
                name="second app",
                redirect_uris=[REDIRECT_URI],
                scopes=sorted(ALL_SCOPES),
                realm=self.user.realm,
                now=self.clock(),
            )
        tokens = await sign_in(self.ctx, new.client, self.user.user_id, scopes=ALL_SCOPES)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="https://keyfob.test",
            headers={
                "Authorization": f"Bearer {tokens['access_token']}",
                "x-introspect-realm": self.user.headers["x-introspect-realm"],
            },
            params={"client_id": new.client.client_id},
        )

    # -- the user face, as an app calls it --------------------------------------------

    async def callback(
        self,
        target: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        attributes: list[dict[str, str]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a callback (to the receiver unless ``target`` says otherwise); its CallbackRef."""
        webhook: dict[str, Any] = {"name": "app", "target": target or self.hook.url}
        if attributes is not None:
            webhook["attributes"] = attributes
        body = {"label": "my app", "type": ["Remote"], "callback": {"webhook": webhook}, **extra}
        answer = await (http or self.http).post(f"{V4}/user/callbacks", json=body)
        assert answer.status_code == 202, answer.text
        created: dict[str, Any] = answer.json()
        assert_conforms("b2c-api", "CallbackRef", created)
        return created

    def remotes_path(self, callback_id: str, vehicle_id: str | None = None) -> str:
        vehicle = vehicle_id or self.vehicle()
        return f"{V4}/user/vehicles/{vehicle}/callbacks/{callback_id}/remotes"

    async def remote(
        self,
        callback_id: str,
        body: dict[str, Any] | None = None,
        *,
        vehicle_id: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> str:
        """POST a remote through the callback; its id."""
        answer = await (http or self.http).post(
            self.remotes_path(callback_id, vehicle_id), json=body or DOORS
        )
        assert answer.status_code == 202, answer.text
        assert_conforms("b2c-api", "RemotePostResponse", answer.json())
        remote_id: str = answer.json()["remoteActionId"]
        return remote_id

    async def set_status(self, callback_id: str, status: str) -> None:
        answer = await self.http.put(
            f"{V4}/user/callbacks/{callback_id}/status", json={"status": status}
        )
        assert answer.status_code == 202, answer.text

    # -- the worker -------------------------------------------------------------------

    async def drain(self) -> int:
        return await drain(self.work)

    async def after(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return await self.drain()


@asynccontextmanager
async def user_stage(
    db: Database, clock: FakeClock, *, scopes: Iterable[str] = ALL_SCOPES, **options: Any
) -> AsyncIterator[Stage]:
    """The stage; ``options`` are the worker's (``WorkerOptions``)."""
    settings = make_settings(db.url, delivery={"allow_private_webhooks": True})
    app = create_app(settings, database=db, clock=clock, announce=lambda _: None)
    sender = WebhookSender(TargetPolicy(allow_private=True), timeout=2.0)
    work = DeliveryWorker(db, sender, clock=clock, options=WorkerOptions(**options))
    async with app.router.lifespan_context(app), receiver() as hook:
        tenant = await make_tenant(app, db, "alice", clock())
        owned = [tenant.vehicles["Electric"].id, tenant.vehicles["Thermic"].id]
        user = await make_user(app.state.ctx, vehicle_ids=owned, scopes=scopes)
        http = user_http(app, user)
        try:
            yield Stage(app, db, clock, tenant, user, http, hook, work)
        finally:
            await http.aclose()
            await tenant.http.aclose()
            await sender.close()
