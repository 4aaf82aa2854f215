"""Vehicles added within one millisecond still list in the order they were added: the fleet's
pages and a user's vehicles sort by creation time, then by id, so the ids must follow the
order of creation (the demo's credentials file lists them that way)."""

from __future__ import annotations

from datetime import UTC, datetime

from keyfob.auth.users import get_user_by_login, vehicle_ids_of
from keyfob.kit.paging import PageRequest
from keyfob.runtime.demo import provision_demo
from keyfob.store.engine import Database
from keyfob.vehicles.overview import fleet_page

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def test_vehicles_made_in_one_instant_list_in_the_order_they_were_made(
    db: Database,
) -> None:
    async with db.transaction() as conn:
        demo = await provision_demo(conn, vehicles=40, now=NOW)
    made = [v.id for v in demo.vehicles]
    page = PageRequest(start=0, end=None, page_size=100, page=1, index_range="0-")
    async with db.read() as conn:
        total, lines = await fleet_page(conn, fleet_id=demo.fleet_id, vin=None, page=page, now=NOW)
        assert demo.user is not None
        user = await get_user_by_login(conn, demo.user.login)
        assert user is not None
        owned = await vehicle_ids_of(conn, user.id)
    assert total == 40
    assert [line.vehicle.id for line in lines] == made
    assert owned == made[:20]
