"""Collection paging (§2): ``indexRange`` windows, ``pageSize`` pages and ``pageToken`` cursors.

The links of a page are what a client follows, so the tests walk them rather than build
cursors themselves.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from conftest import CALLBACK, Tenant, create_callback
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from oracle_schemas import assert_conforms, errors


def check_error(answer: httpx.Response, error: ErrorCode, *words: str) -> list[str]:
    if answer.status_code != error.status:
        return [f"status {answer.status_code} instead of {error.status}: {answer.text}"]
    data = answer.json()
    problems = errors("b2b-api", "xError", data)
    if data.get("code") != error.code:
        problems.append(f"code {data.get('code')} instead of {error.code}: {data.get('message')}")
    return problems + [
        f"message lacks {w!r}: {data['message']}" for w in words if w not in data["message"]
    ]


async def seven_callbacks(tenant: Tenant, clock: FakeClock) -> list[str]:
    ids = []
    for index in range(7):
        ids.append(await create_callback(tenant, {**CALLBACK, "label": f"cb{index}"}))
        clock.advance(1)
    return ids


async def follow(http: httpx.AsyncClient, href: str, **params: Any) -> httpx.Response:
    """GET a link; its query is passed as params, which the client would otherwise replace."""
    url = httpx.URL(href)
    query = [*url.params.multi_items(), *params.items()]
    return await http.get(url.copy_with(query=None), params=query)


async def page(tenant: Tenant, url: str, **params: Any) -> dict[str, Any]:
    answer = await follow(tenant.http, url, **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert_conforms("b2b-api", "RemoteCallbacks", body)
    return body


def ids_of(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["_embedded"]["callbacks"]]


async def test_walking_the_next_links_visits_every_item_once(
    tenant: Tenant, clock: FakeClock
) -> None:
    ids = await seven_callbacks(tenant, clock)
    url = f"{tenant.fleet}/remote/callbacks"
    first = await page(tenant, url, pageSize=3)
    assert ids_of(first) == ids[:3]
    assert (first["total"], first["totalPage"], first["currentPage"]) == (7, 3, 1)
    assert "prev" not in first["_links"]
    assert first["_links"]["self"]["href"] == first["_links"]["first"]["href"]

    seen, current = ids_of(first), first
    while "next" in current["_links"]:
        current = await page(tenant, current["_links"]["next"]["href"])
        seen += ids_of(current)
    assert seen == ids
    assert current["currentPage"] == 3
    assert current["_links"]["self"]["href"] == current["_links"]["last"]["href"]

    back = await page(tenant, current["_links"]["prev"]["href"])
    assert ids_of(back) == ids[3:6]
    assert back["currentPage"] == 2
    again = await page(tenant, back["_links"]["first"]["href"])
    assert ids_of(again) == ids[:3]


async def test_index_range_picks_a_window_that_pages_cut(tenant: Tenant, clock: FakeClock) -> None:
    ids = await seven_callbacks(tenant, clock)
    url = f"{tenant.fleet}/remote/callbacks"

    window = await page(tenant, url, indexRange="2-5")
    assert ids_of(window) == ids[2:6]
    assert (window["total"], window["totalPage"]) == (4, 1)

    cut = await page(tenant, url, indexRange="2-5", pageSize=3)
    assert ids_of(cut) == ids[2:5]
    assert "indexRange=2-5" in cut["_links"]["next"]["href"]
    rest = await page(tenant, cut["_links"]["next"]["href"])
    assert ids_of(rest) == ids[5:6]

    assert ids_of(await page(tenant, url, indexRange="5-")) == ids[5:]
    assert ids_of(await page(tenant, url, indexRange="0-0")) == ids[:1]
    beyond = await page(tenant, url, indexRange="10-20")
    assert ids_of(beyond) == []
    assert (beyond["total"], beyond["totalPage"], beyond["currentPage"]) == (0, 1, 1)


async def test_cursors_only_fit_the_query_they_came_from(tenant: Tenant, clock: FakeClock) -> None:
    await seven_callbacks(tenant, clock)
    url = f"{tenant.fleet}/remote/callbacks"
    nxt = (await page(tenant, url, pageSize=2))["_links"]["next"]["href"]
    token = httpx.URL(nxt).params["pageToken"]
    assert (
        await tenant.http.get(url, params={"pageSize": 2, "pageToken": token})
    ).status_code == 200

    failures: list[str] = []
    variants: list[dict[str, Any]] = [
        {"pageSize": 3, "pageToken": token},
        {"pageSize": 2, "pageToken": token, "types": "Horn"},
        {"pageSize": 2, "pageToken": token, "indexRange": "1-"},
    ]
    for params in variants:
        answer = await tenant.http.get(url, params=params)
        failures += [
            f"{params}: {p}" for p in check_error(answer, ErrorCode.INVALID_PAGE_TOKEN, "pageToken")
        ]
    vehicles = await tenant.http.get(
        f"{tenant.fleet}/vehicles", params={"pageSize": 2, "pageToken": token}
    )
    failures += [f"vehicles: {p}" for p in check_error(vehicles, ErrorCode.INVALID_PAGE_TOKEN)]
    assert not failures, "\n".join(failures)


def forged(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_bad_paging_parameters_are_400_naming_the_parameter(tenant: Tenant) -> None:
    url = f"{tenant.fleet}/remote/callbacks"
    cases: list[tuple[dict[str, Any], ErrorCode, str]] = [
        ({"indexRange": "abc"}, ErrorCode.INVALID_QUERY, "indexRange"),
        ({"indexRange": "5-2"}, ErrorCode.INVALID_QUERY, "indexRange"),
        ({"indexRange": "-3"}, ErrorCode.INVALID_QUERY, "indexRange"),
        ({"indexRange": "99999999999999999999999-"}, ErrorCode.INVALID_QUERY, "indexRange"),
        ({"indexRange": "0-99999999999999999999999"}, ErrorCode.INVALID_QUERY, "indexRange"),
        ({"indexRange": "9" * 5000 + "-"}, ErrorCode.INVALID_QUERY, "indexRange"),
        ({"pageSize": 0}, ErrorCode.INVALID_QUERY, "pageSize"),
        ({"pageSize": 61}, ErrorCode.INVALID_QUERY, "pageSize"),
        ({"pageSize": "ten"}, ErrorCode.INVALID_QUERY, "pageSize"),
        ({"pageToken": "not-a-token"}, ErrorCode.INVALID_PAGE_TOKEN, "pageToken"),
        ({"pageToken": forged([1, 2])}, ErrorCode.INVALID_PAGE_TOKEN, "pageToken"),
        ({"pageToken": "SW5maW5pdHk"}, ErrorCode.INVALID_PAGE_TOKEN, "pageToken"),
    ]
    failures: list[str] = []
    for params, error, word in cases:
        answer = await tenant.http.get(url, params=params)
        failures += [f"{params}: {p}" for p in check_error(answer, error, word)]
    assert not failures, "\n".join(failures)


async def test_a_cursor_far_beyond_the_end_is_refused_or_empty(tenant: Tenant) -> None:
    url = f"{tenant.fleet}/remote/callbacks"
    await create_callback(tenant)
    await create_callback(tenant)
    token = httpx.URL((await page(tenant, url, pageSize=1))["_links"]["next"]["href"]).params[
        "pageToken"
    ]
    issued = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert issued["p"] == 2
    for huge in (10**6, 10**30, 2**63):
        params: dict[str, Any] = {"pageSize": 1, "pageToken": forged({**issued, "p": huge})}
        answer = await tenant.http.get(url, params=params)
        assert answer.status_code in (200, 400), f"page {huge}: {answer.text}"
        if answer.status_code == 200:
            assert ids_of(answer.json()) == []


async def test_every_collection_pages_the_same_way(tenant: Tenant, clock: FakeClock) -> None:
    vehicles = await tenant.http.get(f"{tenant.fleet}/vehicles", params={"pageSize": 2})
    body = vehicles.json()
    assert_conforms("b2b-api", "Vehicles", body)
    assert (body["total"], body["totalPage"], len(body["_embedded"]["vehicles"])) == (3, 2, 2)
    rest = await follow(tenant.http, body["_links"]["next"]["href"])
    assert len(rest.json()["_embedded"]["vehicles"]) == 1

    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    url = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
    posted = []
    for _ in range(3):
        posted.append((await tenant.http.post(url, json={"wakeUp": {}})).json()["remoteActionId"])
        clock.advance(1)
    actions = (await tenant.http.get(url, params={"pageSize": 2, "indexRange": "1-"})).json()
    assert_conforms("b2b-api", "RemoteActions", actions)
    assert [a["remoteActionId"] for a in actions["_embedded"]["remoteActions"]] == posted[1:]
    assert (actions["total"], actions["totalPage"]) == (2, 1)

    fleets = await tenant.http.get("/connectedcar/v3/fleets", params={"indexRange": "1-"})
    assert_conforms("b2b-api", "Fleets", fleets.json())
    assert fleets.json()["_embedded"]["fleets"] == []
