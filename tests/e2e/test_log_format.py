"""``keyfob serve --log-format json``: every line on standard error is one JSON record.

A real ``keyfob serve`` (SQLite, in-memory link, one simulated vehicle) runs with a webhook
receiver that answers 500 and a callback without retries. Its standard error must be JSON lines
only, uvicorn's start-up lines included, each with time, level, logger and message; the failed
POST of the remote's events is one WARNING line (it will be retried), then one ERROR line
(abandoned), each with the callback id, the remote id, the attempt and the status. With
``--log-format text`` the same start-up is plain lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from delivery_support import receiver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(workdir: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "keyfob.cli.main", "serve", "--port", str(port)]
    command += ["--vehicles", "1", "--allow-private-webhooks", *options]
    env = {**os.environ, "KEYFOB_SIM_SPEED": "0"}
    with (workdir / "stdout.log").open("wb") as out, (workdir / "stderr.log").open("wb") as err:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=err)


async def wait_healthy(port: int, process: subprocess.Popen[bytes], workdir: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, (workdir / "stderr.log").read_text()
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError((workdir / "stderr.log").read_text()[-3000:])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def json_lines(workdir: Path) -> list[dict[str, Any]]:
    """Every line of standard error, parsed: one that is not JSON fails the test."""
    records = []
    for line in (workdir / "stderr.log").read_text().splitlines():
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        datetime.fromisoformat(record["time"])
        records.append(record)
    return records


async def test_serve_logs_json_lines_with_the_failed_delivery(tmp_path: Path) -> None:
    port = free_port()
    async with receiver() as hook:
        hook.answer = lambda _n: 500
        process = spawn(tmp_path, port, "--log-format", "json", "--access-log")
        try:
            await wait_healthy(port, process, tmp_path)
            demo = json.loads((tmp_path / "keyfob-demo.json").read_text())
            partner = demo["partner"]
            base = f"http://127.0.0.1:{port}/connectedcar/v3/fleets/{demo['fleetId']}"
            async with httpx.AsyncClient(
                auth=(partner["login"], partner["password"]),
                params={"client_id": partner["clientId"]},
            ) as client:
                created = await client.post(
                    f"{base}/remote/callbacks",
                    json={
                        "callback": {"webhook": {"target": hook.url, "name": "logs"}},
                        "retryPolicy": {"policy": "None", "retryDelay": 1},
                        "remoteTypes": ["Horn"],
                    },
                )
                assert created.status_code == 200, created.text
                callback_id = created.json()["callbackId"]
                vid = demo["vehicles"][0]["vid"]
                posted = await client.post(
                    f"{base}/vehicles/{vid}/callbacks/{callback_id}/remotes",
                    json={"horn": {"state": "Activated"}},
                )
                assert posted.status_code == 202, posted.text
                remote_id = posted.json()["remoteActionId"]
            for _ in range(300):
                if '"outcome": "abandoned"' in (tmp_path / "stderr.log").read_text():
                    break
                await asyncio.sleep(0.1)
        finally:
            stop(process)
    records = json_lines(tmp_path)
    assert any(
        r["logger"].startswith("uvicorn") and "Uvicorn running on" in r["message"] for r in records
    ), "uvicorn's own lines come out as JSON too"
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r.get("path") == "/health" and r.get("status") == 200 for r in access)
    failed = [r for r in records if r.get("remote_id") == remote_id]
    assert all(r["logger"] == "keyfob.delivery" for r in failed), failed
    assert all(r["callback_id"] == callback_id and r["status"] == 500 for r in failed), failed
    first = [(r["level"], r["outcome"]) for r in failed if r["attempt"] == 1]
    second = [(r["level"], r["outcome"]) for r in failed if r["attempt"] == 2]
    assert set(first) == {("warning", "retry")}, failed
    assert set(second) == {("error", "abandoned")}, failed
    assert hook.requests, "the receiver was called"


async def test_serve_logs_text_lines_by_default(tmp_path: Path) -> None:
    port = free_port()
    process = spawn(tmp_path, port, "--no-access-log")
    try:
        await wait_healthy(port, process, tmp_path)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/health")
    finally:
        stop(process)
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    running = [line for line in lines if "Uvicorn running on" in line]
    assert running, lines
    assert " INFO uvicorn.error " in running[0], lines
    assert not any(line.startswith("{") for line in lines)
    assert not any("GET /health" in line for line in lines), "--no-access-log"


async def test_log_level_warning_keeps_info_lines_out(tmp_path: Path) -> None:
    port = free_port()
    process = spawn(tmp_path, port, "--log-format", "json", "--log-level", "warning")
    try:
        await wait_healthy(port, process, tmp_path)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/health")
    finally:
        stop(process)
    records = json_lines(tmp_path)
    assert all(r["level"] in {"warning", "error", "critical"} for r in records), records
    assert not any("Uvicorn running on" in r["message"] for r in records)
