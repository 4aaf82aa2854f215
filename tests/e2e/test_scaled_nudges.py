"""Scaled out, a delivery worker hears what other processes stored instead of polling for it.

This is the layout without ``delivery.inline``, where dispatchers only store and workers claim
everything; with it (the default) the dispatcher's own worker takes its events
(``test_delivery_handover``), and a separate worker is woken only for what it did not take.

``keyfob serve`` (API only), ``keyfob dispatcher``, ``keyfob worker`` and ``keyfob sim`` are four
processes on PostgreSQL and a broker. The API stores a remote and its Accepted event; the
dispatcher stores the car's answer and the Done event. The worker is told both through
PostgreSQL's NOTIFY, so with a poll of a minute every notification still arrives as soon as it
is stored (a realistic car takes a few seconds to answer, long after any other wake-up).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from fault_processes import Process, base_env, free_port, healthy

from delivery_support import receiver
from keyfob.store.engine import Database
from mosquitto import Mosquitto

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("inline", [False, True])
async def test_the_worker_is_nudged_by_the_api_and_the_dispatcher(
    pg: Database, pg_url: str, tmp_path: Path, inline: bool
) -> None:
    """``pg`` empties the session's database first: with a tenant left by an earlier test,
    ``serve`` finds the demo partner and writes no credentials file.

    ``inline``: the default layout, where ``keyfob dispatcher`` delivers what it stores, and
    no ``keyfob worker`` runs at all."""
    broker = Mosquitto(tmp_path)
    broker.start()
    port = free_port()
    demo = tmp_path / "demo.json"
    common = {
        "KEYFOB_SIM_SPEED": "1",
        "KEYFOB_DELIVERY__POLL_S": "60",
        "KEYFOB_DELIVERY__INLINE": str(inline).lower(),
    }
    api_only = {
        "KEYFOB_RUN_DISPATCHER": "false",
        "KEYFOB_RUN_WORKER": "false",
        "KEYFOB_RUN_SIMULATOR": "false",
    }
    where = ["--db", pg_url]
    serve = Process(
        "serve",
        [
            *("serve", "--port", str(port), *where, "--mqtt", broker.url()),
            *("--vehicles", "1", "--credentials-file", str(demo), "--allow-private-webhooks"),
        ],
        base_env(**common, **api_only),
        tmp_path,
    )
    dispatcher = Process(
        "dispatcher",
        ["dispatcher", *where, "--mqtt", broker.url(), "--allow-private-webhooks"],
        base_env(**common),
        tmp_path,
    )
    worker = Process(
        "worker", ["worker", *where, "--allow-private-webhooks"], base_env(**common), tmp_path
    )
    sim = Process(
        "sim", ["sim", "--mqtt", broker.url(), *where, "--speed", "1"], base_env(), tmp_path
    )
    processes = [serve, dispatcher, sim] if inline else [serve, dispatcher, worker, sim]
    try:
        serve.start()
        base = f"http://127.0.0.1:{port}"
        await healthy(base, serve)
        for process in processes[1:]:
            process.start()
        document = json.loads(demo.read_text())
        partner = document["partner"]
        auth = (partner["login"], partner["password"])
        fleet = f"{base}/connectedcar/v3/fleets/{document['fleetId']}"
        params = {"client_id": partner["clientId"]}
        vehicle = document["vehicles"][0]["vid"]
        async with receiver() as hook, httpx.AsyncClient(auth=auth, params=params) as api:
            made = await api.post(
                f"{fleet}/remote/callbacks",
                json={
                    "callback": {"webhook": {"name": "hook", "target": hook.url}},
                    "remoteTypes": ["Horn"],
                },
            )
            assert made.status_code == 200, made.text
            remotes = f"{fleet}/vehicles/{vehicle}/callbacks/{made.json()['callbackId']}/remotes"
            async with asyncio.timeout(60):  # the car comes online, the worker listens
                while not (await api.get(f"{base}/ready")).is_success:
                    await asyncio.sleep(0.2)
                answer = await api.post(remotes, json={"horn": {"state": "Activated"}})
                assert answer.status_code == 202, answer.text
                remote = answer.json()["remoteActionId"]
            async with asyncio.timeout(30):  # far less than the worker's poll of 60 s
                while "Success" not in hook.statuses_of(remote):
                    await asyncio.sleep(0.05)
            history = (await api.get(f"{remotes}/{remote}")).json()["events"]
            assert hook.statuses_of(remote) == [event["status"] for event in history]
    except BaseException:
        for process in processes:
            print(f"--- {process.name} log ---\n{process.tail()}")
        raise
    finally:
        for process in processes:
            process.stop()
        broker.stop()
