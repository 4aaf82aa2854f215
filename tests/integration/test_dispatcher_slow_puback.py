"""A command whose PUBACK never comes does not stop the rest of the dispatcher.

The dispatcher of ``keyfob serve --mqtt`` talks to a scripted broker that reports two cars
online, acknowledges everything the platform publishes except the first command, and records
what it was sent. While that one publication waits (the link's 10 s publish time-out), a
remote for the other online car must still be sent, and a remote for a car that never comes
online must still end at its wake-up deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from conftest import make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.link import mqtt_packets as packets
from keyfob.link.protocol import Presence, PresenceState, encode
from keyfob.link.topics import Channel, vehicle_topic
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import Database
from vehicle_support import callback_for_all, until_done

HORN = {"horn": {"state": "Activated"}}


def topics_in(subscribe: bytes) -> int:
    """How many topic filters a SUBSCRIBE body holds."""
    count, at = 0, 2
    while at < len(subscribe):
        at += 2 + int.from_bytes(subscribe[at : at + 2], "big") + 1
        count += 1
    return count


class WithholdingBroker:
    """Answers CONNECT, SUBSCRIBE and pings; PUBACKs every publication but the first command."""

    def __init__(self, online_vins: list[str]) -> None:
        self.online_vins = online_vins
        self.published: list[str] = []
        self.withheld: list[str] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"mqtt://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = packets.PacketReader()
        mid = 0
        try:
            while data := await reader.read(65536):
                for kind, flags, body in parser.feed(data):
                    if kind == packets.CONNECT:
                        writer.write(bytes((packets.CONNACK << 4, 2, 0, 0)))
                    elif kind == packets.SUBSCRIBE:
                        count = topics_in(body)
                        writer.write(bytes((packets.SUBACK << 4, 2 + count)) + body[:2])
                        writer.write(b"\x01" * count)
                        for vin in self.online_vins:
                            mid += 1
                            online = Presence(PresenceState.ONLINE, utcnow())
                            topic = vehicle_topic(vin, Channel.PRESENCE)
                            payload = encode(online)
                            writer.write(
                                packets.publish(topic, payload, qos=1, retain=False, mid=mid)
                            )
                    elif kind == packets.PINGREQ:
                        writer.write(bytes((packets.PINGRESP << 4, 0)))
                    elif kind == packets.PUBLISH:
                        message = packets.parse_publish(flags, body)
                        self.published.append(message.topic)
                        is_command = message.topic.endswith(f"/{Channel.CMD.value}")
                        if is_command and not self.withheld:
                            self.withheld.append(message.topic)  # its PUBACK never comes
                        elif message.qos:
                            writer.write(packets.puback(message.mid))
        except ConnectionError:
            pass
        finally:
            writer.close()


@asynccontextmanager
async def mqtt_app(db: Database, broker: WithholdingBroker) -> AsyncIterator[Any]:
    values: dict[str, Any] = {
        "mqtt": broker.url,
        "run_simulator": False,
        "dispatcher_id": "withholding-test",
        "vehicle": {"wake_up_timeout_s": 1.0, "command_timeout_s": 30.0},
    }
    app = create_app(
        make_settings(db.url, **values),
        database=db,
        clock=utcnow,
        roles=[vehicle_role],
        announce=lambda _: None,
    )
    async with app.router.lifespan_context(app):
        yield app


async def test_a_lost_puback_holds_neither_other_commands_nor_deadlines(db: Database) -> None:
    setup = create_app(make_settings(db.url), database=db, clock=utcnow, announce=lambda _: None)
    async with setup.router.lifespan_context(setup):
        tenant = await make_tenant(setup, db, "alice", utcnow())
    await tenant.http.aclose()
    electric, thermic, hybrid = (tenant.vehicles[k] for k in ("Electric", "Thermic", "Hybrid"))
    broker = WithholdingBroker([electric.vin, thermic.vin])
    broker.server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    try:
        async with mqtt_app(db, broker) as app:
            tenant.http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="https://keyfob.test",
                auth=(tenant.login, tenant.password),
                params={"client_id": tenant.client_id},
            )
            cbid = await callback_for_all(tenant)

            async def post(vehicle_id: str) -> str:
                path = f"{tenant.fleet}/vehicles/{vehicle_id}/callbacks/{cbid}/remotes"
                posted = await tenant.http.post(path, json=HORN)
                assert posted.status_code == 202, posted.text
                return f"{path}/{posted.json()['remoteActionId']}"

            stuck = await post(electric.id)
            async with asyncio.timeout(10):  # until the car is known online and it is sent
                while not broker.withheld:
                    await asyncio.sleep(0.02)
            started = time.perf_counter()
            await post(thermic.id)
            thermic_cmd = vehicle_topic(thermic.vin, Channel.CMD)
            async with asyncio.timeout(3):
                while thermic_cmd not in broker.published:
                    await asyncio.sleep(0.02)
            unreachable = await post(hybrid.id)
            ended = await until_done(tenant, unreachable, timeout=5)
            waited = time.perf_counter() - started
            still = (await tenant.http.get(stuck)).json()
            await tenant.http.aclose()
    finally:
        broker.server.close()
    assert ended["status"] == "Failed", ended
    assert ended["failureCause"] == "VehicleConnectionTimeout", ended
    assert still["status"] == "SentToVehicle", "the withheld command was still waiting"
    assert waited < 8, "all this happened well within the withheld command's 10 s"
