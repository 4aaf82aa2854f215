"""Nothing is lost when the whole process dies: SIGKILL ``keyfob serve`` during a run.

A real ``keyfob serve`` (SQLite, in-memory link, simulated vehicles) is killed with SIGKILL
several times while 2,000 remotes are posted, and restarted each time. At the end, every event
of every accepted remote has reached the webhook receiver at least once, and each remote's
events first arrived in sequence order.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from delivery_support import receiver

pytestmark = pytest.mark.slow

REMOTES = 2_000
KILLS = 3
BODIES = [{"horn": {"state": "Activated"}}, {"lights": {"on": True}}, {"wakeUp": {}}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "KEYFOB_SIM_SPEED": "0",
            "KEYFOB_VEHICLE__COMMAND_TIMEOUT_S": "3",
            "KEYFOB_VEHICLE__WAKE_UP_TIMEOUT_S": "3",
            "KEYFOB_VEHICLE__WAKE_UP_QUOTA_PER_MONTH": "100000",
            "KEYFOB_VEHICLE__SHORT_WINDOW_WAKE_UPS": "100000",
            "KEYFOB_RATE_LIMIT__BURST": "100000",
            "KEYFOB_DELIVERY__TIMEOUT_S": "2",
            "KEYFOB_DELIVERY__LEASE_S": "3",
        }

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "keyfob.cli.main",
            "serve",
            "--port",
            str(self.port),
            "--vehicles",
            "30",
            "--allow-private-webhooks",
        ]
        with (self.workdir / "serve.log").open("ab") as log:
            return subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        self.process = self._spawn()
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    health = await client.get(f"http://127.0.0.1:{self.port}/health")
                    if health.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError((self.workdir / "serve.log").read_text()[-3000:])

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def post_all(server: Server, demo: dict[str, Any], callback_id: str) -> dict[str, str]:
    """Post REMOTES remotes while the server is killed and restarted KILLS times.

    Like a careful client, each remote has its own Idempotency-Key and is posted again until it
    is answered: one whose first answer died with the server gets the same remoteActionId.
    """
    partner = demo["partner"]
    vehicles = [v["vid"] for v in demo["vehicles"]]
    base = f"http://127.0.0.1:{server.port}/connectedcar/v3/fleets/{demo['fleetId']}"
    accepted: dict[int, tuple[str, str]] = {}
    semaphore = asyncio.Semaphore(16)

    async def one(client: httpx.AsyncClient, index: int) -> None:
        vid = vehicles[index % len(vehicles)]
        url = f"{base}/vehicles/{vid}/callbacks/{callback_id}/remotes"
        while index not in accepted:
            async with semaphore:
                try:
                    answer = await client.post(
                        url,
                        json=BODIES[index % len(BODIES)],
                        headers={"Idempotency-Key": f"crash-test-{index}"},
                    )
                except httpx.TransportError:
                    answer = None
            if answer is not None and answer.status_code == 202:
                accepted[index] = (answer.json()["remoteActionId"], vid)
            else:
                await asyncio.sleep(0.2)

    async def killer() -> None:
        for kill in range(1, KILLS + 1):
            while len(accepted) < kill * REMOTES // (KILLS + 1):
                await asyncio.sleep(0.05)
            server.kill()
            await server.start()

    async with httpx.AsyncClient(
        auth=(partner["login"], partner["password"]),
        params={"client_id": partner["clientId"]},
        timeout=10,
    ) as client:
        await asyncio.wait_for(
            asyncio.gather(killer(), *(one(client, i) for i in range(REMOTES))), timeout=300
        )
    return dict(accepted.values())


async def test_sigkill_during_a_run_loses_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path)
    async with receiver() as hook:
        try:
            await server.start()
            demo = json.loads((tmp_path / "keyfob-demo.json").read_text())
            partner = demo["partner"]
            async with httpx.AsyncClient(
                auth=(partner["login"], partner["password"]),
                params={"client_id": partner["clientId"]},
            ) as client:
                created = await client.post(
                    f"http://127.0.0.1:{server.port}/connectedcar/v3/fleets/{demo['fleetId']}/remote/callbacks",
                    json={
                        "callback": {"webhook": {"target": hook.url, "name": "crash"}},
                        "retryPolicy": {"policy": "Always", "retryDelay": 1},
                        "remoteTypes": ["Horn", "Lights", "WakeUp"],
                    },
                )
            assert created.status_code == 200, created.text
            started = asyncio.get_running_loop().time()
            accepted = await post_all(server, demo, created.json()["callbackId"])
            print(f"posted in {asyncio.get_running_loop().time() - started:.1f} s")
            assert len(accepted) == REMOTES, "each retried post kept its remoteActionId"
            histories = await wait_for_all(
                server, demo, created.json()["callbackId"], accepted, hook
            )
        finally:
            server.stop()
    first_seen: dict[str, list[int]] = {}
    for event in hook.events:
        seen = first_seen.setdefault(event["remoteActionId"], [])
        if event["sequence"] not in seen:
            seen.append(event["sequence"])
    for remote_id, history in histories.items():
        assert history[-1]["type"] == "Done"
        expected = [e["sequence"] for e in history]
        got = first_seen.get(remote_id)
        assert got == expected, f"{remote_id}: received {got}, history {expected}"


async def wait_for_all(
    server: Server, demo: dict[str, Any], callback_id: str, accepted: dict[str, str], hook: Any
) -> dict[str, list[dict[str, Any]]]:
    """Wait until the receiver has a Done for every remote, then read each one's history."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 240
    missing = set(accepted)
    while missing and loop.time() < deadline:
        done = {e["remoteActionId"] for e in hook.events if e["eventStatus"]["type"] == "Done"}
        missing -= done
        if missing:
            await asyncio.sleep(0.5)
    assert not missing, f"{len(missing)} remotes never got a Done, e.g. {sorted(missing)[:3]}"
    print(f"all Done delivered {loop.time() - deadline + 240:.1f} s after posting ended")
    partner = demo["partner"]
    base = f"http://127.0.0.1:{server.port}/connectedcar/v3/fleets/{demo['fleetId']}"
    histories: dict[str, list[dict[str, Any]]] = {}
    async with httpx.AsyncClient(
        auth=(partner["login"], partner["password"]), params={"client_id": partner["clientId"]}
    ) as client:
        for remote_id, vid in accepted.items():
            answer = await client.get(
                f"{base}/vehicles/{vid}/callbacks/{callback_id}/remotes/{remote_id}"
            )
            assert answer.status_code == 200, answer.text
            histories[remote_id] = answer.json()["events"]
    return histories
