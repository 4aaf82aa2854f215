"""``keyfob worker`` and ``keyfob dispatcher`` alone: their counters on ``--metrics-port``, their
logs in JSON lines.

In the scaled-out shape no API runs in these processes, so without their own listener the
deliveries they make and the remotes they finish would be counted where nobody can scrape
them. Each runs as a real process (the dispatcher on a private Mosquitto), is scraped, and is
stopped with SIGTERM; it must exit 0 with standard error in JSON lines only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mosquitto import Mosquitto, free_port


def run_and_scrape(workdir: Path, *args: str) -> set[str]:
    port = free_port()
    command = [sys.executable, "-m", "keyfob.cli.main", *args]
    command += ["--metrics-port", str(port), "--log-format", "json"]
    with (workdir / "stderr.log").open("wb") as err:
        process = subprocess.Popen(
            command, cwd=workdir, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        body = ""
        for _ in range(300):
            assert process.poll() is None, (workdir / "stderr.log").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
            except httpx.TransportError:
                time.sleep(0.05)  # polling until the process listens
                continue
            body = answer.text
            break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, (workdir / "stderr.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    for line in (workdir / "stderr.log").read_text().splitlines():
        assert {"time", "level", "logger", "message"} <= json.loads(line).keys(), line
    return {family.name for family in text_string_to_metric_families(body)}


def test_a_worker_serves_its_delivery_counters(tmp_path: Path) -> None:
    families = run_and_scrape(tmp_path, "worker", "--db", "sqlite:///worker.db")
    assert "keyfob_webhook_deliveries" in families
    assert "keyfob_webhook_attempt_seconds" in families


def test_a_dispatcher_serves_its_remote_counters(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        families = run_and_scrape(
            tmp_path, "dispatcher", "--db", "sqlite:///dispatcher.db", "--mqtt", broker.url()
        )
    finally:
        broker.stop()
    assert {"keyfob_remotes_finished", "keyfob_remote_done_seconds", "keyfob_wake_ups"} <= families
