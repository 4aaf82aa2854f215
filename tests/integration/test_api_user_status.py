"""``GET /user/vehicles/{id}/status``: 40400 until the car reports, then its driver's view."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from conftest import Tenant, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock, utcnow
from keyfob.link.protocol import Action, new_command
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.sim.config import SimConfig
from keyfob.sim.vehicle import SimVehicle
from keyfob.store.engine import Database
from keyfob.vehicles.state import STATUS
from keyfob.vehicles.user_status import POSITION, TELEMETRY
from keyfob.vocabulary import Motorization
from oracle_schemas import assert_conforms, errors
from user_support import make_user, user_http

V4 = "/connectedcar/v4"
B2C_MEMBERS = POSITION | TELEMETRY | {"createdAt", "updatedAt", "_links"}


def quiet_app(db: Database, *, roles: Any = ()) -> Any:
    settings = make_settings(db.url, sim_speed=0.0, vehicles=0)
    return create_app(settings, database=db, clock=utcnow, roles=roles, announce=lambda _: None)


async def until_reported(http: httpx.AsyncClient, path: str, timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    answer = await http.get(path)
    while answer.status_code == 404 and loop.time() < deadline:
        await asyncio.sleep(0.05)
        answer = await http.get(path)
    return answer


async def test_no_status_is_40400_until_the_car_reports(db: Database) -> None:
    app = quiet_app(db)
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, "alice", utcnow())
        await tenant.http.aclose()
        electric = tenant.vehicles["Electric"]
        user = await make_user(app.state.ctx, vehicle_ids=[electric.id])
        path = f"{V4}/user/vehicles/{electric.id}/status"
        async with user_http(app, user) as http:
            answer = await http.get(path)
            assert (await http.get(f"{V4}/user/vehicles/{electric.id}")).status_code == 200
    # What a polling client reads as "no data yet": 404 with the integer code 40400.
    assert answer.status_code == 404, answer.text
    assert not errors("b2c-api", "xError", answer.json())
    assert answer.json()["code"] == 40400
    assert "not reported" in answer.json()["message"]

    # The simulated car connects and reports; the same request now answers its status.
    app = quiet_app(db, roles=[vehicle_role])
    async with app.router.lifespan_context(app):
        async with user_http(app, user) as http:
            answer = await until_reported(http, path)
        fleet = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://keyfob.test",
            auth=(tenant.login, tenant.password),
            params={"client_id": tenant.client_id},
        )
        async with fleet:
            seen_by_fleet = (
                await fleet.get(f"{tenant.fleet}/vehicles/{electric.id}/status?profile=endUser")
            ).json()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/hal+json"
    status = answer.json()
    assert_conforms("b2c-api", "Status", status)
    href = f"https://keyfob.test{V4}/user/vehicles/{electric.id}"
    assert status["_links"] == {
        "self": {"href": f"{href}/status?profile=endUser"},
        "vehicle": {"href": href},
    }
    # The fleet's end-user view, without the members the b2c Status does not have.
    assert set(status) == set(seen_by_fleet) & B2C_MEMBERS
    assert "vin" in seen_by_fleet
    assert "vin" not in status
    assert {"lastPosition", "doorsState", "energies"} <= set(status)


def stolen_car_status(vin: str) -> tuple[dict[str, Any], Any]:
    """A simulated electric car's status after its fleet declared it stolen."""
    clock = FakeClock()
    car = SimVehicle(vin, Motorization.ELECTRIC, seed=3, clock=clock, config=SimConfig(speed=0))
    car.connected(clock())
    command = new_command(Action.STOLEN, {"stolen": True}, now=clock(), ttl=timedelta(minutes=1))
    car.handle_command(command, clock())
    document = car.status()
    assert document["stolen"]["state"] is True
    return document, clock()


async def report(db: Database, vehicle_id: str, document: dict[str, Any], at: Any) -> None:
    """Record a status as the dispatcher records a vehicle's telemetry."""
    async with db.transaction() as conn:
        await conn.execute(
            STATUS.statement,
            [{"s_vehicle_id": vehicle_id, "s_status": document, "s_status_at": at}],
        )


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ({"data:telemetry", "data:position"}, {"lastPosition", "doorsState", "privacy"}),
        ({"data:telemetry"}, {"doorsState", "privacy"}),
        ({"data:position"}, {"lastPosition"}),
        ({"remote:door:write"}, set()),
    ],
)
async def test_the_tokens_data_scopes_choose_the_members(
    app: Any, db: Database, tenant: Tenant, scopes: set[str], expected: set[str]
) -> None:
    electric = tenant.vehicles["Electric"]
    await report(db, electric.id, *stolen_car_status(electric.vin))
    user = await make_user(app.state.ctx, vehicle_ids=[electric.id], scopes=scopes)
    async with user_http(app, user) as http:
        answer = await http.get(f"{V4}/user/vehicles/{electric.id}/status")
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert_conforms("b2c-api", "Status", status)
    assert set(status) - {"createdAt", "updatedAt", "_links"} >= expected
    if "data:position" not in scopes:
        assert "lastPosition" not in status
    if "data:telemetry" not in scopes:
        assert set(status) <= {"createdAt", "updatedAt", "_links", "lastPosition"}
    assert "stolen" not in status  # the fleet declared it stolen: the fleet's business
