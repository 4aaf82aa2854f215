"""The user face's reads (§2.5): the user, their vehicles, extensions, paging and tenancy.

Users are signed in for real (``tests/user_support.py``) and own some of a fleet's vehicles;
every answer is checked against the official b2c schemas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from conftest import Tenant
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_vehicle
from keyfob.vocabulary import Motorization
from oracle_schemas import assert_conforms, errors
from user_support import UserLogin, make_user, user_http

V4 = "/connectedcar/v4"
BASE = f"https://keyfob.test{V4}"
GATEWAY = {"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "Token is invalid"}


async def follow(http: httpx.AsyncClient, href: str) -> httpx.Response:
    """GET a link of an answer (the client's own ``client_id`` is added to its query)."""
    parts = urlsplit(href)
    return await http.get(parts.path, params=parse_qsl(parts.query))


def assert_error(answer: httpx.Response, error: ErrorCode, *words: str) -> None:
    assert answer.status_code == error.status, answer.text
    data = answer.json()
    assert not errors("b2c-api", "xError", data)
    assert data["code"] == error.code, data
    for word in words:
        assert word in data["message"], data


@pytest.fixture
async def owner(app: Any, tenant: Tenant) -> UserLogin:
    """A user owning alice's electric and hybrid cars (not her thermic one)."""
    ids = [tenant.vehicles["Electric"].id, tenant.vehicles["Hybrid"].id]
    return await make_user(app.state.ctx, vehicle_ids=ids, login="driver@example.com")


@pytest.fixture
async def http(app: Any, owner: UserLogin) -> AsyncIterator[httpx.AsyncClient]:
    async with user_http(app, owner) as client:
        yield client


async def test_the_user_reads_their_profile(http: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await http.get(f"{V4}/user")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/hal+json"
    user = answer.json()
    assert_conforms("b2c-api", "User", user)
    assert (user["email"], user["firstName"], user["lastName"]) == (
        "driver@example.com",
        "Test",
        "User",
    )
    assert user["_links"] == {
        "self": {"href": f"{BASE}/user"},
        "vehicles": {"href": f"{BASE}/user/vehicles"},
    }
    # The same rate headers as the fleet face, on successes and errors alike.
    fleet = await tenant.http.get("/connectedcar/v3/fleets")
    names = {k for k in fleet.headers if k.startswith("x-ratelimit-")}
    assert names == {
        "x-ratelimit-limit-1",
        "x-ratelimit-remaining-1",
        "x-ratelimit-limit-2",
        "x-ratelimit-remaining-2",
    }
    missing = await http.get(f"{V4}/user/vehicles/unknown")
    for answered in (answer, missing):
        assert names <= set(answered.headers), answered.headers


async def test_the_user_sees_exactly_their_vehicles(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await http.get(f"{V4}/user/vehicles")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/hal+json"
    page = answer.json()
    assert_conforms("b2c-api", "Vehicles", page)
    listed = page["_embedded"]["vehicles"]
    electric, hybrid = tenant.vehicles["Electric"], tenant.vehicles["Hybrid"]
    assert [(v["id"], v["vin"], v["motorization"]) for v in listed] == [
        (electric.id, electric.vin, "Electric"),
        (hybrid.id, hybrid.vin, "Hybrid"),
    ]
    assert (page["total"], page["totalPage"], page["currentPage"]) == (2, 1, 1)
    href = f"{BASE}/user/vehicles/{electric.id}"
    assert listed[0]["_links"]["self"] == {"href": href}
    assert listed[0]["_links"]["status"] == {"href": f"{href}/status"}
    assert "_embedded" not in listed[0]

    one = await http.get(f"{V4}/user/vehicles/{electric.id}")
    assert one.status_code == 200, one.text
    assert_conforms("b2c-api", "Vehicle", one.json())
    assert one.json() == listed[0]

    # Alice's thermic car is in the same fleet but not the user's: it does not exist for them.
    thermic = tenant.vehicles["Thermic"].id
    for path in (f"user/vehicles/{thermic}", f"user/vehicles/{thermic}/status"):
        assert_error(await http.get(f"{V4}/{path}"), ErrorCode.VEHICLE_NOT_FOUND, thermic)
    assert_error(await http.get(f"{V4}/user/vehicles/nope"), ErrorCode.VEHICLE_NOT_FOUND, "nope")


async def test_users_never_see_each_others_vehicles(
    app: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    ctx = app.state.ctx
    mine = tenant.vehicles["Electric"].id
    theirs = other_tenant.vehicles["Electric"].id
    shared = other_tenant.vehicles["Hybrid"].id
    first = await make_user(ctx, vehicle_ids=[mine, shared])
    second = await make_user(ctx, vehicle_ids=[theirs, shared])
    seen: dict[str, set[str]] = {}
    for user, foreign in ((first, theirs), (second, mine)):
        async with user_http(app, user) as http:
            listed = (await http.get(f"{V4}/user/vehicles")).json()["_embedded"]["vehicles"]
            seen[user.user_id] = {v["id"] for v in listed}
            for path in (f"{foreign}", f"{foreign}/status", f"{foreign}?extension=branding"):
                answer = await http.get(f"{V4}/user/vehicles/{path}")
                assert_error(answer, ErrorCode.VEHICLE_NOT_FOUND)
            assert (await http.get(f"{V4}/user/vehicles/{shared}")).status_code == 200
    assert seen == {first.user_id: {mine, shared}, second.user_id: {theirs, shared}}


async def test_a_user_without_vehicles_has_an_empty_collection(app: Any) -> None:
    lonely = await make_user(app.state.ctx)
    async with user_http(app, lonely) as http:
        answer = await http.get(f"{V4}/user/vehicles")
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert_conforms("b2c-api", "Vehicles", page)
    assert (page["total"], page["totalPage"], page["_embedded"]["vehicles"]) == (0, 1, [])


async def test_partner_credentials_open_nothing_on_v4(tenant: Tenant) -> None:
    vid = tenant.vehicles["Electric"].id
    for path in ("user", "user/vehicles", f"user/vehicles/{vid}", f"user/vehicles/{vid}/status"):
        # Basic + client_id as the fleet face takes them, with a realm so the token is judged.
        answer = await tenant.http.get(
            f"{V4}/{path}", headers={"x-introspect-realm": "clientsB2CPeugeot"}
        )
        assert answer.status_code == 401, answer.text
        assert answer.json() == GATEWAY
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_of_another_realm_is_refused(app: Any, owner: UserLogin) -> None:
    async with user_http(app, owner) as http:
        answer = await http.get(
            f"{V4}/user/vehicles", headers={"x-introspect-realm": "clientsB2COpel"}
        )
    assert answer.status_code == 401, answer.text
    assert answer.json() == GATEWAY


EMBEDDED_BOTH = [("extension", "branding"), ("extension", "onboardCapabilities")]


async def test_extensions_embed_branding_and_capabilities(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await http.get(f"{V4}/user/vehicles", params=EMBEDDED_BOTH)
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert_conforms("b2c-api", "Vehicles", page)
    for vehicle in page["_embedded"]["vehicles"]:
        extension = vehicle["_embedded"]["extension"]
        assert_conforms("b2c-api", "VehicleExtension", extension)
        assert extension["branding"] == {
            "brand": "Peugeot",
            "label": f"Peugeot {vehicle['motorization']}",
        }
        remote = extension["onboardCapabilities"]["remote"]
        assert remote["door"] == {"supported": True, "scopeName": "remote:door:write"}
        assert remote["charging"]["supported"] is True
        assert "stolen" not in remote  # not a user-face remote
    # The next page's link keeps the extensions.
    first = await http.get(f"{V4}/user/vehicles", params=[*EMBEDDED_BOTH, ("pageSize", "1")])
    second = (await follow(http, first.json()["_links"]["next"]["href"])).json()
    assert second["currentPage"] == 2
    assert set(second["_embedded"]["vehicles"][0]["_embedded"]["extension"]) == {
        "branding",
        "onboardCapabilities",
    }

    vid = tenant.vehicles["Hybrid"].id
    one = await http.get(f"{V4}/user/vehicles/{vid}", params={"extension": "branding"})
    assert one.status_code == 200, one.text
    assert_conforms("b2c-api", "Vehicle", one.json())
    assert set(one.json()["_embedded"]["extension"]) == {"branding"}
    # pictures is a documented value: accepted, but keyfob has none to embed.
    pictures = await http.get(f"{V4}/user/vehicles/{vid}", params={"extension": "pictures"})
    assert pictures.status_code == 200, pictures.text
    assert "_embedded" not in pictures.json()


async def test_capabilities_follow_the_motorization(app: Any, tenant: Tenant) -> None:
    thermic = tenant.vehicles["Thermic"]
    user = await make_user(app.state.ctx, vehicle_ids=[thermic.id], realm="clientsB2COpel/OTPOpel")
    async with user_http(app, user) as http:
        answer = await http.get(
            f"{V4}/user/vehicles/{thermic.id}", params={"extension": "onboardCapabilities"}
        )
    assert answer.status_code == 200, answer.text
    remote = answer.json()["_embedded"]["extension"]["onboardCapabilities"]["remote"]
    assert_conforms("b2c-api", "OnboardCapabilities", {"remote": remote})
    assert remote["preconditioning"]["supported"] is False
    assert remote["charging"]["supported"] is False
    assert remote["horn"]["supported"] is True


@pytest.mark.parametrize(
    "params",
    [
        {"extension": "engine"},
        [("extension", "branding"), ("extension", "Branding")],
        {"extension": ["branding", "onboardCapabilities", "pictures", "branding"]},
    ],
)
async def test_an_undocumented_extension_is_a_400(
    http: httpx.AsyncClient, tenant: Tenant, params: Any
) -> None:
    vid = tenant.vehicles["Electric"].id
    for path in ("user/vehicles", f"user/vehicles/{vid}"):
        answer = await http.get(f"{V4}/{path}", params=params)
        assert_error(answer, ErrorCode.INVALID_QUERY, "extension")


async def many_vehicles(db: Database, tenant: Tenant, clock: FakeClock, count: int) -> list[str]:
    """``count`` more vehicles in alice's fleet, with VINs ``VR1PAGE...`` (their order)."""
    ids = []
    async with db.transaction() as conn:
        for index in range(count):
            clock.advance(1)
            vehicle = await create_vehicle(
                conn,
                fleet_id=tenant.fleet_id,
                vin=f"VR1PAGE{index:010d}",
                motorization="Electric",
                capabilities=capabilities_for(Motorization.ELECTRIC),
                now=clock(),
            )
            ids.append(vehicle.id)
    return ids


async def test_paging_walks_the_users_vehicles(
    app: Any, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    ids = await many_vehicles(db, tenant, clock, 5)
    user = await make_user(app.state.ctx, vehicle_ids=ids)
    # Linked at one instant (the clock stands still), so listed by id; ids made within one
    # millisecond are not in the order they were made.
    ids = sorted(ids)
    walked: list[str] = []
    async with user_http(app, user) as http:
        url: str | None = f"{BASE}/user/vehicles?pageSize=2"
        while url is not None:
            answer = await follow(http, url)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert_conforms("b2c-api", "Vehicles", page)
            assert (page["total"], page["totalPage"]) == (5, 3)
            walked += [v["id"] for v in page["_embedded"]["vehicles"]]
            url = page["_links"].get("next", {}).get("href")
        assert walked == ids

        window = (await http.get(f"{V4}/user/vehicles", params={"indexRange": "1-3"})).json()
        assert [v["id"] for v in window["_embedded"]["vehicles"]] == ids[1:4]
        assert window["total"] == 3

        assert_error(
            await http.get(f"{V4}/user/vehicles", params={"pageToken": "bm90IG1pbmU"}),
            ErrorCode.INVALID_PAGE_TOKEN,
        )
        assert_error(
            await http.get(f"{V4}/user/vehicles", params={"indexRange": "3-1"}),
            ErrorCode.INVALID_QUERY,
            "indexRange",
        )
        assert_error(
            await http.get(f"{V4}/user/vehicles", params={"pageSize": "61"}),
            ErrorCode.INVALID_QUERY,
            "pageSize",
        )


async def test_a_page_token_is_the_users_own(
    app: Any, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    ids = await many_vehicles(db, tenant, clock, 3)
    first = await make_user(app.state.ctx, vehicle_ids=ids)
    second = await make_user(app.state.ctx, vehicle_ids=ids)
    async with user_http(app, first) as http:
        page = (await http.get(f"{V4}/user/vehicles", params={"pageSize": "1"})).json()
        assert (await follow(http, page["_links"]["next"]["href"])).status_code == 200
    async with user_http(app, second) as http:
        answer = await follow(http, page["_links"]["next"]["href"])
    assert_error(answer, ErrorCode.INVALID_PAGE_TOKEN)


async def test_vin_prefix_filters_the_collection(
    app: Any, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    ids = await many_vehicles(db, tenant, clock, 2)
    user = await make_user(app.state.ctx, vehicle_ids=[*ids, tenant.vehicles["Electric"].id])
    async with user_http(app, user) as http:
        for prefix, expected in (("VR1PAGE", ids), ("VR1PAGE0000000001", ids[1:]), ("VR1_", [])):
            page = (await http.get(f"{V4}/user/vehicles", params={"vinPrefix": prefix})).json()
            assert [v["id"] for v in page["_embedded"]["vehicles"]] == expected, prefix
            assert page["total"] == len(expected)
