"""``keyfob serve`` runs its delivery worker in a supervised child process.

On the default the vehicle side's dispatcher hands the worker what it stores over a socket
(``delivery.inline``); with ``delivery.inline = false`` the worker claims it; with
``run_worker_in_child = false`` the worker runs in the vehicle side's child.
What a user of ``serve`` would notice: notifications still arrive, the webhook numbers of
``/metrics`` still count them, a worker that dies is started again (and says so in the log)
without losing what was waiting, and no worker is left running once ``serve`` is gone, whether
it was stopped with Ctrl-C or killed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import Served, serving

pytestmark = pytest.mark.slow


class Hook:
    """A webhook receiver on a free port: every event it was sent, in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def done(self, remote_id: str) -> bool:
        with self.lock:
            return any(
                e["remoteActionId"] == remote_id and e["eventStatus"]["type"] == "Done"
                for e in self.events
            )


@contextmanager
def hook() -> Iterator[tuple[Hook, str]]:
    found = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with found.lock:
                found.events.extend(body["events"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def worker_of(pid: int, role: str = "delivery") -> int:
    """The pid of ``serve``'s child running ``role`` (the delivery worker, or the vehicles)."""
    for child in children(pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"keyfob.runtime.worker_child" in cmdline and role.encode() in cmdline:
            return child
    raise AssertionError(f"serve ({pid}) has no {role} child")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def wait_for(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Client:
    def __init__(self, served: Served, target: str) -> None:
        demo = served.demo
        self.base = f"http://127.0.0.1:{served.port}/connectedcar/v3/fleets/{demo['fleetId']}"
        self.auth = (demo["partner"]["login"], demo["partner"]["password"])
        self.params = {"client_id": demo["partner"]["clientId"]}
        self.vehicle = demo["vehicles"][0]["vid"]
        made = httpx.post(
            f"{self.base}/remote/callbacks",
            params=self.params,
            auth=self.auth,
            json={
                "callback": {"webhook": {"name": "hook", "target": target}},
                "remoteTypes": ["Horn"],
            },
        )
        assert made.status_code == 200, made.text
        self.callback = made.json()["callbackId"]

    def horn(self) -> str:
        answer = httpx.post(
            f"{self.base}/vehicles/{self.vehicle}/callbacks/{self.callback}/remotes",
            params=self.params,
            auth=self.auth,
            json={"horn": {"state": "Activated"}},
        )
        assert answer.status_code == 202, answer.text
        remote_id: str = answer.json()["remoteActionId"]
        return remote_id


def delivered_count(served: Served) -> float:
    text = httpx.get(f"http://127.0.0.1:{served.port}/metrics").text
    for line in text.splitlines():
        if line.startswith('keyfob_webhook_deliveries_total{outcome="delivered"}'):
            return float(line.split()[-1])
    raise AssertionError("no delivered counter in /metrics")


LAYOUTS = {
    "handed over": ({}, "delivery"),
    "claimed": ({"KEYFOB_DELIVERY__INLINE": "false"}, "delivery"),
    "beside the dispatcher": ({"KEYFOB_RUN_WORKER_IN_CHILD": "false"}, "vehicles"),
}
"""Where the delivery worker runs: the settings, and the role of the child that runs it. The
default hands it the dispatcher's rows over a socket; without ``delivery.inline`` it claims
them; with ``run_worker_in_child = false`` it runs in the vehicle side's child."""


@pytest.mark.parametrize("where", sorted(LAYOUTS))
def test_notifications_flow_through_the_child_and_survive_its_death(
    tmp_path: Path, where: str
) -> None:
    settings, role = LAYOUTS[where]
    with (
        hook() as (receiver, target),
        serving(tmp_path, "--vehicles", "1", **settings) as served,
    ):
        client = Client(served, target)
        first = client.horn()
        wait_for(lambda: receiver.done(first), "the first remote's Done")
        # The child's counts reach the /metrics that serve answers (relayed twice a second).
        wait_for(lambda: delivered_count(served) >= 4, "four deliveries in /metrics")

        worker = worker_of(served.process.pid, role)
        os.kill(worker, signal.SIGKILL)
        # Stored while no worker runs: delivered once the new one has started.
        second = client.horn()
        wait_for(lambda: "exited with code -9" in served.log(), "the log line about the death")
        wait_for(lambda: receiver.done(second), "the second remote's Done")
        assert worker_of(served.process.pid, role) != worker
        sequences = [e["sequence"] for e in receiver.events if e["remoteActionId"] == second]
        assert sequences == [1, 2, 3, 4]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("beside", [False, True])
def test_no_worker_outlives_serve(tmp_path: Path, how: signal.Signals, beside: bool) -> None:
    """On the default both the delivery worker and the vehicle side are children of serve;
    with ``run_worker_in_child = false`` the worker runs beside the dispatcher, one child."""
    settings = {"KEYFOB_RUN_WORKER_IN_CHILD": "false"} if beside else {}
    roles = ("vehicles",) if beside else ("delivery", "vehicles")
    with serving(tmp_path, "--vehicles", "1", **settings) as served:
        workers = [worker_of(served.process.pid, role) for role in roles]
        assert len(children(served.process.pid)) == len(roles)
        served.process.send_signal(how)
        served.process.wait(timeout=30)
        if how == signal.SIGINT:  # a clean shutdown (uvicorn then exits as Ctrl-C does: 130)
            assert "Application shutdown complete" in served.log(), served.log()[-2000:]
        for worker in workers:
            wait_for(lambda worker=worker: not alive(worker), f"child {worker} to exit", 30)


def test_a_vehicles_answer_is_delivered_without_waiting_for_the_poll(tmp_path: Path) -> None:
    """The dispatcher inside serve wakes the worker once it has stored the car's answer: with
    a poll of a minute, the Done still arrives as soon as the (realistically slow) car has
    answered."""
    with (
        hook() as (receiver, target),
        serving(
            tmp_path,
            "--vehicles",
            "1",
            KEYFOB_DELIVERY__POLL_S="60",
            KEYFOB_RUN_VEHICLES_IN_CHILD="false",
        ) as served,
    ):
        client = Client(served, target)
        remote = client.horn()
        wait_for(lambda: receiver.done(remote), "the Done notification", timeout=30)
        statuses = [
            e["eventStatus"]["status"] for e in receiver.events if e["remoteActionId"] == remote
        ]
        assert statuses[-1] == "Success"


def done_count(served: Served) -> float:
    text = httpx.get(f"http://127.0.0.1:{served.port}/metrics").text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("keyfob_remotes_finished_total{") and 'type="Horn"' in line
    )


def test_the_vehicle_side_in_a_child_of_its_own(tmp_path: Path) -> None:
    """``run_vehicles_in_child`` without ``delivery.inline``: the dispatcher and the simulated
    cars run in a third process. Its Done events reach the delivery child through the
    database's nudges (the worker's poll is a minute), its counts reach serve's /metrics, and
    it is restarted when it dies."""
    with (
        hook() as (receiver, target),
        serving(
            tmp_path,
            "--vehicles",
            "1",
            KEYFOB_RUN_VEHICLES_IN_CHILD="true",
            KEYFOB_DELIVERY__POLL_S="60",
            KEYFOB_DELIVERY__INLINE="false",
        ) as served,
    ):
        vehicles = worker_of(served.process.pid, "vehicles")
        delivery = worker_of(served.process.pid, "delivery")
        assert vehicles != delivery
        client = Client(served, target)
        first = client.horn()
        wait_for(lambda: receiver.done(first), "the first remote's Done", timeout=20)
        wait_for(lambda: done_count(served) >= 1, "the finished remote in /metrics")

        os.kill(vehicles, signal.SIGKILL)
        wait_for(lambda: "the vehicle side (process" in served.log(), "the log line")
        assert f"the vehicle side (process {vehicles}) exited with code -9" in served.log()
        second = client.horn()
        wait_for(lambda: receiver.done(second), "the second remote's Done", timeout=30)
        assert worker_of(served.process.pid, "vehicles") != vehicles
        sequences = [e["sequence"] for e in receiver.events if e["remoteActionId"] == second]
        assert sequences == [1, 2, 3, 4]
        now_vehicles = worker_of(served.process.pid, "vehicles")
        served.process.send_signal(signal.SIGINT)
        served.process.wait(timeout=30)
        for pid in (now_vehicles, delivery):
            wait_for(lambda pid=pid: not alive(pid), f"child {pid} to exit", timeout=30)


@pytest.mark.parametrize("where", ["handed over", "beside the dispatcher"])
def test_a_burst_keeps_every_remotes_events_in_order(tmp_path: Path, where: str) -> None:
    """Hundreds of remotes at once, so that the dispatcher's handovers, the worker's own
    claims and its records overlap: each remote's events still arrive in their order, each
    once, and every remote ends with its Done."""
    settings, _ = LAYOUTS[where]
    with (
        hook() as (receiver, target),
        serving(
            tmp_path,
            "--vehicles",
            "40",
            KEYFOB_DELIVERY__POLL_S="0.05",
            KEYFOB_RATE_LIMIT__BURST="100000",  # the partner's budget, not under test here
            **settings,
        ) as served,
    ):
        client = Client(served, target)
        vehicles = [v["vid"] for v in served.demo["vehicles"]]

        def horns(vehicle: str) -> list[str]:
            path = f"{client.base}/vehicles/{vehicle}/callbacks/{client.callback}/remotes"
            with httpx.Client(auth=client.auth, params=client.params) as http:
                answers = [http.post(path, json={"horn": {"state": "Activated"}}) for _ in range(5)]
            assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
            return [a.json()["remoteActionId"] for a in answers]

        with ThreadPoolExecutor(max_workers=16) as pool:
            remotes = [r for found in pool.map(horns, vehicles) for r in found]
        wait_for(lambda: all(receiver.done(r) for r in remotes), "every Done", timeout=60)
    with receiver.lock:
        events = list(receiver.events)
    for remote in remotes:
        sequences = [e["sequence"] for e in events if e["remoteActionId"] == remote]
        assert sequences == list(range(1, len(sequences) + 1)), (remote, sequences)
