"""Fleets, their vehicles and a vehicle's onboard capabilities (§2.5), read as a partner."""

from __future__ import annotations

import httpx

from conftest import Tenant
from keyfob.errors import ErrorCode
from oracle_schemas import assert_conforms, errors

BASE = "https://keyfob.test/connectedcar/v3"


def assert_error(answer: httpx.Response, error: ErrorCode, *words: str) -> None:
    assert answer.status_code == error.status, answer.text
    data = answer.json()
    assert not errors("b2b-api", "xError", data)
    assert data["code"] == error.code, data
    for word in words:
        assert word in data["message"], data


async def test_fleets_lists_the_partner_fleet(tenant: Tenant) -> None:
    answer = await tenant.http.get("/connectedcar/v3/fleets")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/hal+json"
    page = answer.json()
    assert_conforms("b2b-api", "Fleets", page)
    assert [f["id"] for f in page["_embedded"]["fleets"]] == [tenant.fleet_id]
    assert (page["total"], page["totalPage"], page["currentPage"]) == (1, 1, 1)


async def test_fleet_links_to_its_vehicles_and_callbacks(tenant: Tenant) -> None:
    answer = await tenant.http.get(tenant.fleet)
    assert answer.status_code == 200, answer.text
    fleet = answer.json()
    assert_conforms("b2b-api", "Fleet", fleet)
    href = f"{BASE}/fleets/{tenant.fleet_id}"
    assert fleet["id"] == tenant.fleet_id
    assert fleet["name"] == "alice fleet"
    assert fleet["_links"] == {
        "self": {"href": href},
        "vehicles": {"href": f"{href}/vehicles"},
        "callbacks": {"href": f"{href}/remote/callbacks"},
    }
    followed = await tenant.http.get(fleet["_links"]["callbacks"]["href"])
    assert followed.status_code == 200
    assert_error(
        await tenant.http.get("/connectedcar/v3/fleets/unknown"),
        ErrorCode.FLEET_NOT_FOUND,
        "unknown",
    )


async def test_vehicles_of_a_fleet(tenant: Tenant) -> None:
    answer = await tenant.http.get(f"{tenant.fleet}/vehicles")
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert_conforms("b2b-api", "Vehicles", page)
    listed = {v["vin"]: v for v in page["_embedded"]["vehicles"]}
    assert {v.vin: v.motorization for v in tenant.vehicles.values()} == {
        vin: v["motorization"] for vin, v in listed.items()
    }
    electric = tenant.vehicles["Electric"]
    item = listed[electric.vin]
    assert item["id"] == electric.id
    assert (
        item["_links"]["self"]["href"] == f"{BASE}/fleets/{tenant.fleet_id}/vehicles/{electric.id}"
    )

    one = await tenant.http.get(f"{tenant.fleet}/vehicles/{electric.id}")
    assert one.status_code == 200, one.text
    assert_conforms("b2b-api", "Vehicle", one.json())
    assert one.json() == item
    assert_error(
        await tenant.http.get(f"{tenant.fleet}/vehicles/nope"), ErrorCode.VEHICLE_NOT_FOUND, "nope"
    )
    assert_error(
        await tenant.http.get("/connectedcar/v3/fleets/nope/vehicles"), ErrorCode.FLEET_NOT_FOUND
    )


async def test_capabilities_follow_the_motorization(tenant: Tenant) -> None:
    supported = {}
    for motorization, vehicle in tenant.vehicles.items():
        answer = await tenant.http.get(
            f"/connectedcar/v3/vehicles/{vehicle.vin}", params={"extension": "onboardCapabilities"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert_conforms("b2b-api", "VehicleCapabilities", body)
        assert (body["vin"], body["motorization"]) == (vehicle.vin, motorization)
        remote = body["_embedded"]["extension"]["onboardCapabilities"]["remote"]
        supported[motorization] = {k for k, v in remote.items() if v.get("supported")}
    assert supported["Electric"] >= {"preconditioning", "charging", "door", "horn", "wakeup"}
    assert supported["Hybrid"] == supported["Electric"]
    assert "preconditioning" not in supported["Thermic"]
    assert "charging" not in supported["Thermic"]
    assert {"door", "horn", "lights", "wakeup", "navigation", "stolen"} <= supported["Thermic"]


async def test_capabilities_without_extension_and_refusals(tenant: Tenant) -> None:
    vin = tenant.vehicles["Hybrid"].vin
    plain = await tenant.http.get(f"/connectedcar/v3/vehicles/{vin}")
    assert plain.status_code == 200, plain.text
    assert_conforms("b2b-api", "VehicleCapabilities", plain.json())
    assert "_embedded" not in plain.json()

    url = f"/connectedcar/v3/vehicles/{vin}"
    assert_error(
        await tenant.http.get(url, params={"extension": "engine"}),
        ErrorCode.INVALID_QUERY,
        "extension",
    )
    too_many = {"extension": ["onboardCapabilities", "branding", "pictures", "branding"]}
    assert_error(await tenant.http.get(url, params=too_many), ErrorCode.INVALID_QUERY, "extension")
    assert_error(
        await tenant.http.get("/connectedcar/v3/vehicles/VF3NOTMINE0000000"),
        ErrorCode.VEHICLE_NOT_FOUND,
        "VF3NOTMINE0000000",
    )
