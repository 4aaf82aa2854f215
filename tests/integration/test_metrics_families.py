"""``/metrics`` beyond webhooks: remotes accepted and finished, accept → Done latency, vehicles
by presence, wake-ups and the outbox, on both engines.

The app runs the whole vehicle side in process (dispatcher, memory link, simulated fleet) and
no delivery worker, so the notifications stay in the outbox. Every number is checked against
what the database or the API says happened.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from conftest import Tenant
from keyfob.notifications.models import notifications
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicle_states, wake_ups
from vehicle_support import callback_for_all, embedded, until_done


async def scrape(tenant: Tenant) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = await tenant.http.get("/metrics")
    assert answer.status_code == 200, answer.text
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_remotes_vehicles_wake_ups_and_the_outbox(db: Database) -> None:
    async with embedded(db) as (app, tenant):
        app.state.ctx.gauges.ttl = 0.0  # every scrape reads the database
        cbid = await callback_for_all(tenant)
        histories = []
        for vehicle in tenant.vehicles.values():
            path = f"{tenant.fleet}/vehicles/{vehicle.id}/callbacks/{cbid}/remotes"
            key = {"Idempotency-Key": f"horn-{vehicle.id}"}
            posted = await tenant.http.post(
                path, json={"horn": {"state": "Activated"}}, headers=key
            )
            assert posted.status_code == 202, posted.text
            remote_id = posted.json()["remoteActionId"]
            histories.append(await until_done(tenant, f"{path}/{remote_id}"))
            again = await tenant.http.post(path, json={"horn": {"state": "Activated"}}, headers=key)
            assert again.json()["remoteActionId"] == remote_id  # a replay: not accepted again
        samples = await scrape(tenant)
        async with db.read() as conn:
            presences = dict(
                (
                    await conn.execute(
                        select(vehicle_states.c.presence, func.count()).group_by(
                            vehicle_states.c.presence
                        )
                    )
                ).all()
            )
            woken = (await conn.execute(select(func.count()).select_from(wake_ups))).scalar_one()
            pending = (
                await conn.execute(
                    select(func.count())
                    .select_from(notifications)
                    .where(notifications.c.state == "pending")
                )
            ).scalar_one()

    assert value(samples, "keyfob_remotes_accepted_total", type="Horn") == 3
    ends = Counter((h["status"], h.get("failureCause") or "") for h in histories)
    for (status, cause), count in ends.items():
        labels = {"type": "Horn", "status": status, "cause": cause}
        assert value(samples, "keyfob_remotes_finished_total", **labels) == count, samples
    assert value(samples, "keyfob_remote_done_seconds_count", type="Horn") == 3
    assert value(samples, "keyfob_remote_done_seconds_bucket", type="Horn", le="+Inf") == 3
    for presence in ("online", "asleep"):
        assert value(samples, "keyfob_vehicles", presence=presence) == presences.get(presence, 0)
    assert sum(presences.values()) == 3
    assert value(samples, "keyfob_wake_ups_total") == woken
    assert pending > 0
    assert value(samples, "keyfob_webhook_queue_depth") == pending


async def test_vehicle_gauges_are_cached_between_close_scrapes(
    app: Any, tenant: Tenant, db: Database
) -> None:
    gauges = app.state.ctx.gauges
    gauges.ttl = 3600.0
    first = await scrape(tenant)
    assert value(first, "keyfob_vehicles", presence="online") == 0
    async with db.transaction() as conn:
        await conn.execute(vehicle_states.update().values(presence="online"))
    cached = await scrape(tenant)
    gauges.ttl = 0.0
    fresh = await scrape(tenant)
    assert value(cached, "keyfob_vehicles", presence="online") == 0
    assert value(fresh, "keyfob_vehicles", presence="online") == 3
