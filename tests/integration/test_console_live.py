"""The console's live timeline: a remote sent from a vehicle's page, run by the dispatcher and a
simulated car in process, streamed as Server-Sent Events until Done."""

from __future__ import annotations

from typing import Any

import orjson

from console_support import browser_http, send_remote, sign_in, vehicle_path
from keyfob.store.engine import Database
from vehicle_support import callback_for_all, embedded, until_done


def read_stream(text: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """``(event, id, data)`` of each message of a ``text/event-stream`` body."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], fields.get("id"), orjson.loads(fields["data"])))
    return found


async def test_the_stream_sends_each_step_until_done_then_ends(db: Database) -> None:
    async with embedded(db) as (app, tenant):
        callback_id = await callback_for_all(tenant)
        async with browser_http(app) as client:
            await sign_in(client, tenant)
            sent = await send_remote(
                client, vehicle_path(tenant), "door", callback_id, **{"door.state": "Locked"}
            )
            timeline = sent.headers["location"]
            stream = await client.get(f"{timeline}/events")
            assert stream.headers["content-type"].startswith("text/event-stream")
            messages = read_stream(stream.text)
            remote_id = timeline.rsplit("/", 1)[1]
            api = await until_done(
                tenant,
                f"{tenant.fleet}/vehicles/{tenant.vehicles['Electric'].id}"
                f"/callbacks/{callback_id}/remotes/{remote_id}",
            )
            resumed = await client.get(f"{timeline}/events", headers={"Last-Event-ID": "1"})
            last = str(api["events"][-1]["sequence"])
            caught_up = await client.get(f"{timeline}/events", headers={"Last-Event-ID": last})
    steps = [data for event, _, data in messages if event == "step"]
    assert [(s["type"], s["status"]) for s in steps] == [
        (e["type"], e["status"]) for e in api["events"]
    ]
    assert steps[0]["status"] == "Accepted"
    assert steps[-1]["type"] == "Done"
    assert [event for event, _, _ in messages][-1] == "end"
    assert [int(i) for event, i, _ in messages if event == "step"] == [s["seq"] for s in steps]
    again = [data["seq"] for event, _, data in read_stream(resumed.text) if event == "step"]
    assert again == [s["seq"] for s in steps if s["seq"] > 1]
    assert read_stream(resumed.text)[-1][0] == "end"
    assert [event for event, _, _ in read_stream(caught_up.text)] == ["end"]
