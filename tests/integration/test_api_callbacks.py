"""Remote callbacks on the fleet face (§2.1): create, read, replace, pause, delete, list.

Each answer is checked against the official schemas; each refusal against the xError body and
the field its message must name. Validation tables run many bodies through one app so the
suite stays fast on both engines; a failure lists every case that went wrong.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import func, select

from conftest import CALLBACK, Tenant, create_callback
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.runtime.tables import callbacks
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms, errors

BASE = "https://keyfob.test/connectedcar/v3"


def body(**changes: Any) -> dict[str, Any]:
    """``CALLBACK`` with top-level members replaced (``None`` removes one)."""
    data = copy.deepcopy(CALLBACK)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def webhook(**changes: Any) -> dict[str, Any]:
    hook: dict[str, Any] = {"target": "https://hooks.example.com/keyfob", "name": "ops"}
    hook.update(changes)
    return body(callback={"webhook": {k: v for k, v in hook.items() if v is not None}})


def attribute(kind: str, key: str, value: str) -> dict[str, Any]:
    return webhook(attributes=[{"type": kind, "key": key, "value": value}])


def check_error(answer: httpx.Response, error: ErrorCode, *words: str) -> list[str]:
    """Why ``answer`` is not the xError ``error`` naming ``words`` (empty when it is)."""
    problems: list[str] = []
    if answer.status_code != error.status:
        return [f"status {answer.status_code} instead of {error.status}: {answer.text}"]
    data = answer.json()
    problems += errors("b2b-api", "xError", data)
    if set(data) != {"code", "uuid", "message", "timestamp"}:
        problems.append(f"xError members {sorted(data)}")
    if data.get("code") != error.code:
        problems.append(f"code {data.get('code')} instead of {error.code}: {data.get('message')}")
    problems += [
        f"message lacks {w!r}: {data['message']}" for w in words if w not in data["message"]
    ]
    return problems


def assert_error(answer: httpx.Response, error: ErrorCode, *words: str) -> None:
    problems = check_error(answer, error, *words)
    assert not problems, problems


async def stored_count(db: Database) -> int:
    async with db.read() as conn:
        count: int = (await conn.execute(select(func.count()).select_from(callbacks))).scalar_one()
    return count


def path(tenant: Tenant, cbid: str = "") -> str:
    return f"{tenant.fleet}/remote/callbacks" + (f"/{cbid}" if cbid else "")


# -- create and read -----------------------------------------------------------------------


async def test_create_answers_200_callback_ref_and_get_echoes_the_subscription(
    tenant: Tenant,
) -> None:
    created = await tenant.http.post(path(tenant), json=CALLBACK)
    assert created.status_code == 200, created.text
    assert created.headers["content-type"] == "application/hal+json"
    ref = created.json()
    assert_conforms("b2b-api", "CallbackRef", ref)
    cbid = ref["callbackId"]
    assert ref["status"] == "Running"
    assert len(cbid) == 32
    assert all(c in "0123456789abcdef" for c in cbid)
    assert ref["_links"] == {
        "fleet": {"href": f"{BASE}/fleets/{tenant.fleet_id}"},
        "callback": {"href": f"{BASE}/fleets/{tenant.fleet_id}/remote/callbacks/{cbid}"},
    }
    assert ref["secret"], "the signing secret is shown once, at creation"

    read = await tenant.http.get(path(tenant, cbid))
    assert read.status_code == 200, read.text
    found = read.json()
    assert_conforms("b2b-api", "RemoteCallback", found)
    assert found["id"] == cbid
    assert found["status"] == "Running"
    assert "secret" not in found
    assert found["_links"]["self"]["href"] == ref["_links"]["callback"]["href"]
    assert found["_links"]["remotes"] == {
        "href": f"{BASE}/fleets/{tenant.fleet_id}/vehicles/{{vid}}/callbacks/{cbid}/remotes",
        "templated": True,
    }
    assert found["subscribe"] == {
        "label": "ops",
        "callback": {
            "webhook": {
                "target": "https://hooks.example.com/keyfob",
                "name": "ops",
                "attributes": [],
            }
        },
        "retryPolicy": {"policy": "Bounded", "retryNumber": 3, "retryDelay": 10},
        "remoteTypes": CALLBACK["remoteTypes"],
    }


async def test_documented_example_and_legacy_names_are_accepted_and_normalized(
    tenant: Tenant,
) -> None:
    documented = {
        "label": "doc",
        "callback": {
            "webhook": {
                "target": "https://my.post.callback",
                "name": "hook",
                "batch": {"enabled": True, "size": 100},
                "attributes": [{"type": "Header", "key": "X-Vehicle_Id", "value": "$vin"}],
            }
        },
        "retryPolicy": {"policy": "None", "retryNumber": 3, "retryDelay": 10},
        "batchNotify": {"size": 10, "timeWindow": 60},
        "remoteTypes": ["Horn", "Doors"],
    }
    legacy = {
        "callback": {"webhook": {"target": "https://my.post.callback", "name": "old"}},
        "retryPolicy": {"policy": "Always", "maxRetryNumber": 5, "retryDelay": 120},
        "notificationTypes": ["ThermalPreconditioning"],
    }
    first = await create_callback(tenant, documented)
    second = await create_callback(tenant, legacy)

    found = (await tenant.http.get(path(tenant, first))).json()
    assert_conforms("b2b-api", "RemoteCallback", found)
    doc = found["subscribe"]
    assert "batch" not in doc["callback"]["webhook"], "webhook.batch is dropped (decision 5)"
    assert doc["batchNotify"] == {"size": 10, "timeWindow": 60}
    assert doc["callback"]["webhook"]["attributes"] == [
        {"type": "Header", "key": "X-Vehicle_Id", "value": "$vin"}
    ]
    # Decision 4 accepts Always on remote callbacks, wider than the official override's enum,
    # so this echo is checked field by field rather than against RemoteCallback.
    old = (await tenant.http.get(path(tenant, second))).json()
    assert old["subscribe"]["remoteTypes"] == ["ThermalPreconditioning"]
    assert "notificationTypes" not in old["subscribe"]
    assert old["subscribe"]["retryPolicy"] == {
        "policy": "Always",
        "retryNumber": 5,
        "retryDelay": 120,
    }


VALID_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("no attributes, decision 20", webhook(attributes=[])),
    ("every B2B variable", attribute("Body", "ctx", "$vin $callbackID $remoteType $fleetID")),
    ("variables in any case", attribute("Query", "v", "$VIN-${remotetype}")),
    ("literal dollar", attribute("Header", "X-Price", "$$5")),
    ("batch with one event", body(batchNotify={"size": 1})),
    ("no label", body(label=None)),
    ("retry None", body(retryPolicy={"policy": "None"})),
]


async def test_valid_variants_are_accepted(tenant: Tenant) -> None:
    failures = []
    for name, data in VALID_VARIANTS:
        answer = await tenant.http.post(path(tenant), json=data)
        if answer.status_code != 200:
            failures.append(f"{name}: {answer.status_code} {answer.text}")
    assert not failures, failures


INVALID: list[tuple[str, object, ErrorCode, tuple[str, ...]]] = [
    ("not an object", [CALLBACK], ErrorCode.INVALID_BODY, ("body",)),
    ("no callback", body(callback=None), ErrorCode.INVALID_BODY, ("callback",)),
    ("no webhook", body(callback={}), ErrorCode.INVALID_BODY, ("callback.webhook",)),
    ("no target", webhook(target=None), ErrorCode.INVALID_BODY, ("callback.webhook.target",)),
    ("no name", webhook(name=None), ErrorCode.INVALID_BODY, ("callback.webhook.name",)),
    ("blank name", webhook(name="  "), ErrorCode.INVALID_BODY, ("callback.webhook.name",)),
    (
        "relative target",
        webhook(target="/hooks"),
        ErrorCode.INVALID_WEBHOOK_TARGET,
        ("callback.webhook.target", "absolute"),
    ),
    (
        "ftp target",
        webhook(target="ftp://hooks.example.com/x"),
        ErrorCode.INVALID_WEBHOOK_TARGET,
        ("callback.webhook.target", "ftp"),
    ),
    (
        "plain http",
        webhook(target="http://hooks.example.com/x"),
        ErrorCode.INVALID_WEBHOOK_TARGET,
        ("callback.webhook.target", "https"),
    ),
    (
        "private address",
        webhook(target="https://10.1.2.3/hook"),
        ErrorCode.INVALID_WEBHOOK_TARGET,
        ("callback.webhook.target", "10.1.2.3"),
    ),
    (
        "target not a string",
        webhook(target=42),
        ErrorCode.INVALID_BODY,
        ("callback.webhook.target",),
    ),
    ("no remoteTypes", body(remoteTypes=None), ErrorCode.INVALID_BODY, ("remoteTypes",)),
    ("empty remoteTypes", body(remoteTypes=[]), ErrorCode.INVALID_BODY, ("remoteTypes",)),
    (
        "unknown remote type",
        body(remoteTypes=["Horn", "Teleport"]),
        ErrorCode.INVALID_BODY,
        ("remoteTypes[1]",),
    ),
    (
        "type listed twice",
        body(remoteTypes=["Horn", "Horn"]),
        ErrorCode.INVALID_BODY,
        ("remoteTypes[1]", "twice"),
    ),
    (
        "unknown policy",
        body(retryPolicy={"policy": "Sometimes"}),
        ErrorCode.INVALID_BODY,
        ("retryPolicy.policy",),
    ),
    (
        "policy missing",
        body(retryPolicy={"retryNumber": 3}),
        ErrorCode.INVALID_BODY,
        ("retryPolicy.policy",),
    ),
    (
        "retryNumber 0",
        body(retryPolicy={"policy": "Bounded", "retryNumber": 0}),
        ErrorCode.INVALID_BODY,
        ("retryPolicy.retryNumber",),
    ),
    (
        "retryDelay as text",
        body(retryPolicy={"policy": "Bounded", "retryDelay": "10"}),
        ErrorCode.INVALID_BODY,
        ("retryPolicy.retryDelay",),
    ),
    (
        "batch size 0, decision 5",
        body(batchNotify={"size": 0}),
        ErrorCode.INVALID_BODY,
        ("batchNotify.size",),
    ),
    (
        "batch without size",
        body(batchNotify={"timeWindow": 60}),
        ErrorCode.INVALID_BODY,
        ("batchNotify.size",),
    ),
    (
        "time window under 5 s",
        body(batchNotify={"size": 5, "timeWindow": 4}),
        ErrorCode.INVALID_BODY,
        ("batchNotify.timeWindow",),
    ),
    (
        "unknown variable, decision 8",
        attribute("Header", "X-Car", "$vni"),
        ErrorCode.UNKNOWN_VARIABLE,
        ("callback.webhook.attributes[0].value", "$vni"),
    ),
    (
        "monitor-only variable",
        attribute("Body", "m", "$monitorID"),
        ErrorCode.UNKNOWN_VARIABLE,
        ("callback.webhook.attributes[0].value", "$monitorID"),
    ),
    (
        "stray dollar",
        attribute("Body", "m", "cost: $"),
        ErrorCode.UNKNOWN_VARIABLE,
        ("callback.webhook.attributes[0].value",),
    ),
    (
        "unknown attribute type",
        attribute("Cookie", "c", "v"),
        ErrorCode.INVALID_BODY,
        ("callback.webhook.attributes[0].type",),
    ),
    (
        "attribute without key",
        webhook(attributes=[{"type": "Body", "value": "v"}]),
        ErrorCode.INVALID_BODY,
        ("callback.webhook.attributes[0].key",),
    ),
    (
        "reserved header",
        attribute("Header", "Content-Type", "text/plain"),
        ErrorCode.INVALID_BODY,
        ("callback.webhook.attributes[0].key", "Content-Type"),
    ),
    (
        "header value with a line break",
        attribute("Header", "X-A", "a\r\nX-B: b"),
        ErrorCode.INVALID_BODY,
        ("callback.webhook.attributes[0].value",),
    ),
    (
        "misspelt attributes, decision 25",
        webhook(attributres=[]),
        ErrorCode.LEGACY_FIELD,
        ("callback.webhook.attributres", "callback.webhook.attributes"),
    ),
    ("unknown member", body(colour="red"), ErrorCode.INVALID_BODY, ("colour",)),
    ("label not a string", body(label=7), ErrorCode.INVALID_BODY, ("label",)),
    (
        "both type names",
        body(notificationTypes=["Horn"]),
        ErrorCode.INVALID_BODY,
        ("notificationTypes", "remoteTypes"),
    ),
]


async def test_every_invalid_body_is_a_400_naming_the_field_and_stores_nothing(
    tenant: Tenant, db: Database
) -> None:
    failures: list[str] = []
    for name, data, error, words in INVALID:
        answer = await tenant.http.post(path(tenant), json=data)
        failures += [f"{name}: {p}" for p in check_error(answer, error, *words)]
    assert not failures, "\n".join(failures)
    assert await stored_count(db) == 0


async def test_create_in_an_unknown_fleet_is_404_and_stores_nothing(
    tenant: Tenant, db: Database
) -> None:
    answer = await tenant.http.post("/connectedcar/v3/fleets/nope/remote/callbacks", json=CALLBACK)
    assert_error(answer, ErrorCode.FLEET_NOT_FOUND, "nope")
    assert await stored_count(db) == 0


async def test_get_unknown_or_malformed_callback_id(tenant: Tenant) -> None:
    assert_error(
        await tenant.http.get(path(tenant, "0123abcd")), ErrorCode.CALLBACK_NOT_FOUND, "0123abcd"
    )
    assert_error(
        await tenant.http.get(path(tenant, "not-hex!")), ErrorCode.INVALID_PATH_ID, "not-hex!"
    )


# -- replace -------------------------------------------------------------------------------


async def test_put_replaces_the_whole_subscription_and_keeps_the_status(tenant: Tenant) -> None:
    cbid = await create_callback(tenant, body(batchNotify={"size": 5}))
    paused = await tenant.http.put(path(tenant, cbid) + "/status", json={"status": "Paused"})
    assert paused.status_code == 202, paused.text

    replacement = {
        "callback": {"webhook": {"target": "https://other.example.org/in", "name": "new"}},
        "remoteTypes": ["Horn"],
    }
    answer = await tenant.http.put(path(tenant, cbid), json=replacement)
    assert answer.status_code == 202, answer.text
    assert answer.headers["content-type"] == "application/hal+json"
    ref = answer.json()
    assert_conforms("b2b-api", "CallbackRef", ref)
    assert ref["callbackId"] == cbid
    assert ref["status"] == "Paused"
    assert "secret" not in ref

    found = (await tenant.http.get(path(tenant, cbid))).json()
    assert found["status"] == "Paused"
    assert found["subscribe"]["callback"]["webhook"]["target"] == "https://other.example.org/in"
    assert found["subscribe"]["remoteTypes"] == ["Horn"]
    assert "batchNotify" not in found["subscribe"], "PUT is a full replacement, not a merge"
    assert "label" not in found["subscribe"]


async def test_refused_put_leaves_the_callback_untouched(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    before = (await tenant.http.get(path(tenant, cbid))).json()
    bad = body(remoteTypes=["Teleport"])
    assert_error(await tenant.http.put(path(tenant, cbid), json=bad), ErrorCode.INVALID_BODY)
    assert_error(
        await tenant.http.put(path(tenant, cbid), json=webhook(target="https://127.0.0.1/")),
        ErrorCode.INVALID_WEBHOOK_TARGET,
        "callback.webhook.target",
    )
    assert (await tenant.http.get(path(tenant, cbid))).json() == before
    assert_error(
        await tenant.http.put(path(tenant, "abcdef"), json=CALLBACK),
        ErrorCode.CALLBACK_NOT_FOUND,
        "abcdef",
    )


# -- status --------------------------------------------------------------------------------


async def test_status_goes_paused_and_back_to_running(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    for status in ("Paused", "Running"):
        answer = await tenant.http.put(path(tenant, cbid) + "/status", json={"status": status})
        assert answer.status_code == 202, answer.text
        ref = answer.json()
        assert_conforms("b2b-api", "CallbackRef", ref)
        assert ref["status"] == status
        assert (await tenant.http.get(path(tenant, cbid))).json()["status"] == status


async def test_status_setter_refusals(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    url = path(tenant, cbid) + "/status"
    cases: list[tuple[object, tuple[str, ...]]] = [
        ({"status": "Failed"}, ("status", "Failed")),
        ({"status": "Stopped"}, ("status", "Stopped")),
        ({"status": 1}, ("status",)),
        ({}, ("status",)),
        ({"status": "Paused", "extra": True}, ("extra",)),
        ("Paused", ("body",)),
    ]
    failures: list[str] = []
    for data, words in cases:
        answer = await tenant.http.put(url, json=data)
        failures += [f"{data!r}: {p}" for p in check_error(answer, ErrorCode.INVALID_BODY, *words)]
    assert not failures, failures
    assert (await tenant.http.get(path(tenant, cbid))).json()["status"] == "Running"
    assert_error(
        await tenant.http.put(path(tenant, "beef") + "/status", json={"status": "Paused"}),
        ErrorCode.CALLBACK_NOT_FOUND,
    )


# -- delete --------------------------------------------------------------------------------


async def test_delete_answers_204_and_the_callback_is_gone(tenant: Tenant) -> None:
    keep = await create_callback(tenant)
    cbid = await create_callback(tenant)
    answer = await tenant.http.delete(path(tenant, cbid))
    assert answer.status_code == 204
    assert answer.content == b""
    assert_error(await tenant.http.get(path(tenant, cbid)), ErrorCode.CALLBACK_NOT_FOUND)
    assert_error(await tenant.http.delete(path(tenant, cbid)), ErrorCode.CALLBACK_NOT_FOUND)
    assert_error(
        await tenant.http.put(path(tenant, cbid) + "/status", json={"status": "Paused"}),
        ErrorCode.CALLBACK_NOT_FOUND,
    )
    listed = (await tenant.http.get(path(tenant))).json()
    assert [c["id"] for c in listed["_embedded"]["callbacks"]] == [keep]
    assert_error(await tenant.http.delete(path(tenant, "zz")), ErrorCode.INVALID_PATH_ID)


async def test_delete_with_a_remote_in_progress_is_409_and_keeps_it(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    posted = await tenant.http.post(
        f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes",
        json={"horn": {"state": "Activated"}},
    )
    assert posted.status_code == 202, posted.text
    answer = await tenant.http.delete(path(tenant, cbid))
    assert_error(answer, ErrorCode.CALLBACK_HAS_PENDING_REMOTES, cbid)
    assert (await tenant.http.get(path(tenant, cbid))).status_code == 200


# -- list ----------------------------------------------------------------------------------


async def test_list_is_a_remote_callbacks_collection_filtered_by_types(
    tenant: Tenant, clock: FakeClock
) -> None:
    empty = await tenant.http.get(path(tenant))
    assert empty.status_code == 200, empty.text
    assert_conforms("b2b-api", "RemoteCallbacks", empty.json())
    assert empty.json()["total"] == 0
    assert empty.json()["_embedded"] == {"callbacks": []}

    created = []
    for types in (["Horn"], ["Doors", "Lights"], ["Lights", "Horn"]):
        created.append(await create_callback(tenant, body(remoteTypes=types)))
        clock.advance(1)
    horn, doors, both = created

    listed = await tenant.http.get(path(tenant))
    page = listed.json()
    assert listed.headers["content-type"] == "application/hal+json"
    assert_conforms("b2b-api", "RemoteCallbacks", page)
    assert [c["id"] for c in page["_embedded"]["callbacks"]] == [horn, doors, both]
    assert (page["total"], page["totalPage"], page["currentPage"]) == (3, 1, 1)

    async def ids(*types: str) -> list[str]:
        answer = await tenant.http.get(path(tenant), params={"types": list(types)})
        assert answer.status_code == 200, answer.text
        assert_conforms("b2b-api", "RemoteCallbacks", answer.json())
        return [c["id"] for c in answer.json()["_embedded"]["callbacks"]]

    assert await ids("Horn") == [horn, both]
    assert await ids("Doors") == [doors]
    assert await ids("Horn", "Doors") == [horn, doors, both]
    assert await ids("Navigation") == []

    filtered = await tenant.http.get(path(tenant), params={"types": ["Doors"]})
    assert "types=Doors" in filtered.json()["_links"]["self"]["href"]
    assert_error(
        await tenant.http.get(path(tenant), params={"types": "Teleport"}),
        ErrorCode.INVALID_QUERY,
        "types",
    )
