"""A vehicle added with ``keyfob admin vehicle add`` while ``keyfob serve`` runs is simulated
without a restart: its first remote ends Done/Success instead of timing out unconnected.

Through a real ``keyfob serve`` subprocess (on its in-memory link, and over a private MQTT
broker) and a real ``keyfob admin`` beside it, on the same SQLite file; the registry is looked
at every 0.2 s here (``sim_registry_poll_s``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import Served, serving

from mosquitto import Mosquitto

TIMEOUTS = {
    "KEYFOB_SIM_SPEED": "0",
    "KEYFOB_SIM_REGISTRY_POLL_S": "0.2",
    "KEYFOB_VEHICLE__WAKE_UP_TIMEOUT_S": "8",
    "KEYFOB_VEHICLE__COMMAND_TIMEOUT_S": "8",
}


def _remote(served: Served, vehicle_id: str, body: dict[str, Any]) -> dict[str, Any]:
    demo = served.demo
    partner = demo["partner"]
    auth = (partner["login"], partner["password"])
    base = demo["baseUrl"]
    query = {"client_id": partner["clientId"]}
    with httpx.Client(auth=auth, params=query, timeout=10) as http:
        made = http.post(
            f"{base}/fleets/{demo['fleetId']}/remote/callbacks",
            json={
                "label": "registry test",
                "callback": {"webhook": {"name": "none", "target": "http://127.0.0.1:9/x"}},
                "remoteTypes": ["Horn"],
            },
        )
        assert made.status_code == 200, made.text
        remotes = (
            f"{base}/fleets/{demo['fleetId']}/vehicles/{vehicle_id}"
            f"/callbacks/{made.json()['callbackId']}/remotes"
        )
        sent = http.post(remotes, json=body)
        assert sent.status_code == 202, sent.text
        url = f"{remotes}/{sent.json()['remoteActionId']}"
        deadline = time.monotonic() + 30
        while True:
            action: dict[str, Any] = http.get(url).json()
            if action["events"][-1]["type"] == "Done" or time.monotonic() > deadline:
                return action
            time.sleep(0.1)


@pytest.fixture(params=["in-memory link", "mqtt"])
def link_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """No extra option (the embedded link), or ``--mqtt`` on a private broker."""
    if request.param == "in-memory link":
        yield []
        return
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Mosquitto(folder)
    broker.start()
    try:
        yield ["--mqtt", broker.url()]
    finally:
        broker.stop()


def test_a_vehicle_added_while_serving_is_simulated(tmp_path: Path, link_args: list[str]) -> None:
    with serving(tmp_path, "--vehicles", "1", *link_args, **TIMEOUTS) as served:
        added = json.loads(
            served.keyfob(
                "admin", "vehicle", "add", served.demo["fleetId"], "--motorization", "Electric"
            )
        )

        action = _remote(served, added["vid"], {"horn": {"state": "Activated"}})

        last = action["events"][-1]
        assert (last["type"], last["status"]) == ("Done", "Success"), action
        assert f"now simulating {added['vin']}" in served.log()


def _logged(served: Served, text: str) -> bool:
    deadline = time.monotonic() + 15
    while text not in served.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_vehicle_removed_while_serving_is_no_longer_simulated(
    tmp_path: Path, link_args: list[str]
) -> None:
    with serving(tmp_path, "--vehicles", "1", *link_args, **TIMEOUTS) as served:
        fleet = served.demo["fleetId"]
        added = json.loads(
            served.keyfob("admin", "vehicle", "add", fleet, "--motorization", "Hybrid")
        )
        assert _logged(served, f"now simulating {added['vin']}")

        served.keyfob("admin", "vehicle", "remove", added["vid"])

        assert _logged(served, f"no longer simulating {added['vin']}")
