"""Fault tests' traffic and witness: a flow of remotes posted as a careful client does, and a
spy on the broker that notes every car's result.

The flow keeps remotes coming at a modest rate while something breaks; a remote refused by
trouble (a 5xx, a transport error) is posted again under the same Idempotency-Key, so every
remote the test counts is one the platform accepted once. The spy listens from outside the
proxies, on the broker itself: when each result first reached the broker, and how many distinct
results each command id got (a car that runs a command again answers with a new ``at``; one
that repeats its answer sends the same one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from keyfob.kit.clock import utcnow
from keyfob.link.protocol import ProtocolError, Result, decode
from keyfob.link.topics import VEHICLES, Channel
from keyfob.link.transport import parse_broker_url
from keyfob.sim.mqtt_fleet import GmqttLink
from mosquitto import Mosquitto

BODIES: list[dict[str, Any]] = [
    {"horn": {"state": "Activated"}},
    {"lights": {"on": True}},
    {"wakeUp": {}},
]


class ResultSpy:
    """Every result on the broker, per command id: when it first arrived and each ``at``."""

    def __init__(self, broker: Mosquitto) -> None:
        self.link = GmqttLink(
            parse_broker_url(broker.url()), client_id="fault-spy", persistent=False
        )
        self.first: dict[str, datetime] = {}
        self.runs: dict[str, set[datetime]] = {}
        self.link.set_handler(self._on_result)

    async def _on_result(self, topic: str, payload: bytes) -> None:
        with contextlib.suppress(ProtocolError):
            result = decode(Result, payload)
            self.first.setdefault(result.id, utcnow())
            self.runs.setdefault(result.id, set()).add(result.at)

    @classmethod
    def nothing_seen(cls) -> ResultSpy:
        """For a shape without a broker: no result is visible from outside."""
        spy = cls.__new__(cls)
        spy.first, spy.runs = {}, {}
        return spy

    async def start(self) -> None:
        await self.link.start()
        await self.link.subscribe(f"{VEHICLES}/+/{Channel.RESULT.value}")

    async def stop(self) -> None:
        await self.link.stop()


@dataclass
class Flow:
    """Remotes posted at ``rate`` per second over the cars, as a careful client: each with its
    own Idempotency-Key, posted again (same key) after a transport error, a 5xx, or a 429
    once its Retry-After has passed."""

    base: str
    vids: list[str]
    callback_id: str
    auth: tuple[str, str]
    client_id: str
    accepted: dict[str, str] = field(default_factory=dict)  # remote id → vehicle id
    answers: Counter[str] = field(default_factory=Counter)

    async def run(self, seconds: float, rate: float) -> None:
        async with httpx.AsyncClient(
            auth=self.auth, params={"client_id": self.client_id}, timeout=5
        ) as client:
            posts = []
            for index in range(int(seconds * rate)):
                posts.append(asyncio.create_task(self._one(client, index)))
                await asyncio.sleep(1 / rate)
            async with asyncio.timeout(60):
                await asyncio.gather(*posts)

    async def _one(self, client: httpx.AsyncClient, index: int) -> None:
        vid = self.vids[index % len(self.vids)]
        url = f"{self.base}/vehicles/{vid}/callbacks/{self.callback_id}/remotes"
        key = f"fault-{index}"
        while True:
            try:
                answer = await client.post(
                    url,
                    json=BODIES[index // len(self.vids) % len(BODIES)],
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError as error:
                self.answers[type(error).__name__] += 1
                await asyncio.sleep(0.2)
                continue
            self.answers[str(answer.status_code)] += 1
            if answer.status_code == 202:
                self.accepted[answer.json()["remoteActionId"]] = vid
                return
            # Only trouble may refuse a remote. A 429 with Retry-After is a wait, not a refusal:
            # a restarted API process has forgotten which addresses signed in before, and a
            # burst of retries that all miss its credential cache meets the sign-in throttle.
            assert answer.status_code >= 500 or answer.status_code == 429, answer.text
            wait = float(answer.headers.get("Retry-After", "0")) if answer.status_code == 429 else 0
            await asyncio.sleep(max(wait, 0.2))


async def demo_flow(base: str, demo: Path) -> Flow:
    """A callback for the demo partner, and a flow of remotes over its demo vehicles."""
    details = json.loads(demo.read_text())
    partner = details["partner"]
    auth = (partner["login"], partner["password"])
    fleet = f"{base}/connectedcar/v3/fleets/{details['fleetId']}"
    async with httpx.AsyncClient(auth=auth, params={"client_id": partner["clientId"]}) as http:
        created = await http.post(
            f"{fleet}/remote/callbacks",
            json={
                "callback": {"webhook": {"target": "https://hooks.example.com/f", "name": "f"}},
                "remoteTypes": ["Horn", "Lights", "WakeUp"],
            },
        )
    assert created.status_code == 200, created.text
    vids = [v["vid"] for v in details["vehicles"]]
    return Flow(fleet, vids, created.json()["callbackId"], auth, partner["clientId"])
