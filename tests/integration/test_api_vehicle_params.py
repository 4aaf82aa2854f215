"""The vehicle reads' ``vinPrefix``, ``extension`` and ``locale`` (decision 31), as a client
generated from the official specification sends them: each is honoured, and a value outside
what the specification documents is a 400, never silently ignored."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from conftest import Tenant
from keyfob.errors import ErrorCode
from oracle_schemas import assert_conforms, errors
from user_support import make_user, user_http

V4 = "/connectedcar/v4"


def refused(answer: httpx.Response, *words: str) -> list[str]:
    if answer.status_code != 400:
        return [f"{answer.status_code}: {answer.text[:200]}"]
    data = answer.json()
    found = [str(p) for p in errors("b2b-api", "xError", data)]
    if data["code"] != ErrorCode.INVALID_QUERY.code:
        found.append(f"code {data['code']}: {data['message']}")
    return found + [f"the message lacks {w!r}" for w in words if w not in data["message"]]


def vins(page: dict[str, Any]) -> list[str]:
    return [v["vin"] for v in page.get("_embedded", {}).get("vehicles", [])]


async def test_vin_prefix_filters_the_fleet_vehicle_list(tenant: Tenant) -> None:
    path = f"{tenant.fleet}/vehicles"
    every = sorted(v.vin for v in tenant.vehicles.values())
    one = every[1]
    cases = {
        one: [one],
        one[:-1]: every,
        "VF9": [],
        one[:3] + "_": [],  # LIKE's wildcards are plain characters here
        one[:3] + "%": [],
    }
    for prefix, expected in cases.items():
        answer = await tenant.http.get(path, params={"vinPrefix": prefix})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert_conforms("b2b-api", "Vehicles", page)
        assert sorted(vins(page)) == expected, prefix
        assert page["total"] == len(expected)
        if expected:
            assert f"vinPrefix={prefix}" in page["_links"]["self"]["href"]


async def test_a_page_token_holds_to_the_vin_prefix_it_was_issued_for(tenant: Tenant) -> None:
    path = f"{tenant.fleet}/vehicles"
    prefix = min(v.vin for v in tenant.vehicles.values())[:-1]
    first = await tenant.http.get(path, params={"vinPrefix": prefix, "pageSize": 1})
    assert first.status_code == 200, first.text
    nxt = first.json()["_links"]["next"]["href"]
    assert f"vinPrefix={prefix}" in nxt
    token = httpx.URL(nxt).params["pageToken"]
    other = await tenant.http.get(
        path, params={"vinPrefix": prefix[:-1], "pageSize": 1, "pageToken": token}
    )
    assert other.status_code == 400, other.text
    assert other.json()["code"] == ErrorCode.INVALID_PAGE_TOKEN.code
    second = await tenant.http.get(
        path, params={"vinPrefix": prefix, "pageSize": 1, "pageToken": token}
    )
    assert second.status_code == 200, second.text
    assert vins(second.json()) != vins(first.json())


async def test_extension_on_a_fleet_vehicle_embeds_its_capabilities(tenant: Tenant) -> None:
    vehicle = tenant.vehicles["Electric"]
    path = f"{tenant.fleet}/vehicles/{vehicle.id}"
    answer = await tenant.http.get(path, params={"extension": "onboardCapabilities"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert_conforms("b2b-api", "Vehicle", body)
    capabilities = await tenant.http.get(
        f"/connectedcar/v3/vehicles/{vehicle.vin}", params={"extension": "onboardCapabilities"}
    )
    assert body["_embedded"]["extension"] == capabilities.json()["_embedded"]["extension"]
    for quiet in ({}, {"extension": ["branding", "pictures"]}):
        plain = await tenant.http.get(path, params=quiet)
        assert plain.status_code == 200, plain.text
        assert "_embedded" not in plain.json()


async def test_values_outside_the_specification_are_refused(app: FastAPI, tenant: Tenant) -> None:
    vehicle = tenant.vehicles["Electric"]
    fleet_reads = [
        f"{tenant.fleet}/vehicles",
        f"{tenant.fleet}/vehicles/{vehicle.id}",
        f"/connectedcar/v3/vehicles/{vehicle.vin}",
    ]
    user = await make_user(app.state.ctx, vehicle_ids=[vehicle.id])
    failures: list[str] = []
    async with user_http(app, user) as user_client:
        reads = [(tenant.http, p) for p in fleet_reads] + [
            (user_client, f"{V4}/user/vehicles"),
            (user_client, f"{V4}/user/vehicles/{vehicle.id}"),
        ]
        for http, path in reads:
            for locale in ("fr-FR", "en_GB", "de"):
                answer = await http.get(path, params={"locale": locale})
                if answer.status_code != 200:
                    failures.append(f"{path} locale={locale}: {answer.status_code}")
            for locale in ("fr FR", "fr-FR-x!", "", "x" * 100, "<script>"):
                problems = refused(await http.get(path, params={"locale": locale}), "locale")
                failures += [f"{path} locale={locale[:10]!r}: {p}" for p in problems]
            problems = refused(await http.get(path, params={"extension": "everything"}))
            failures += [f"{path} extension=everything: {p}" for p in problems]
    # A fleet's list embeds no capabilities: the specification's list enum lacks them.
    listing = await tenant.http.get(
        f"{tenant.fleet}/vehicles", params={"extension": "onboardCapabilities"}
    )
    failures += [f"list extension=onboardCapabilities: {p}" for p in refused(listing)]
    pictures = await tenant.http.get(f"{tenant.fleet}/vehicles", params={"extension": "pictures"})
    if pictures.status_code != 200:
        failures.append(f"list extension=pictures: {pictures.status_code}")
    assert not failures, "\n".join(failures)
