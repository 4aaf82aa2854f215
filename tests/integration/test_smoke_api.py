"""The shortest path a newcomer takes: a callback, a remote, reading it back."""

from __future__ import annotations

from conftest import Tenant, create_callback
from oracle_schemas import assert_conforms


async def test_post_and_read_back_a_remote(tenant: Tenant) -> None:
    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
    posted = await tenant.http.post(path, json={"door": {"state": "Locked"}})
    assert posted.status_code == 202, posted.text
    assert posted.headers["content-type"] == "application/hal+json"
    assert_conforms("b2b-api", "RemotePostResponse", posted.json())
    rid = posted.json()["remoteActionId"]

    read = await tenant.http.get(f"{path}/{rid}")
    assert read.status_code == 200
    body = read.json()
    assert_conforms("b2b-api", "RemoteAction", body)
    assert body["status"] == "Accepted"
    assert body["remote"] == {"door": {"state": "Locked"}}
    assert [(e["sequence"], e["type"], e["status"]) for e in body["events"]] == [
        (1, "Pending", "Accepted")
    ]
