"""Simulated vehicles on a real MQTT broker: ``keyfob sim --mqtt URL --vehicles N``.

Each vehicle gets its own connection, as a real car would, with its own credentials when the
registry gives some. Ten thousand of them must fit in one process, so vehicle connections use
gmqtt (one asyncio protocol each, ~20 KiB) rather than the platform's own ``MqttTransport``.
They speak MQTT 5 for two features: a persistent session (``clean_start`` off, one day expiry),
so commands published during a short sleep or outage wait at the broker; and the
"disconnect with will" reason code, so a vehicle that goes offline on purpose makes the broker
publish its last will exactly as a lost network would.

A vehicle's ``publish`` of a result returns once the broker's PUBACK has arrived, and raises
``TransportError`` when the connection ends first or no PUBACK comes within ``ack_timeout``
(other messages are handed over without waiting, as nothing is kept for them): the fleet then
keeps the result in the vehicle's outbox and sends it again (``docs/vehicle-protocol.md`` §5).
gmqtt may also replay the unacknowledged PUBLISH itself on reconnection; the platform counts a
result once.

The SMS network is stood in for by one extra connection subscribed to
``keyfob/v1/wakeup/+``: it hears wake-up signals for every vehicle, sleeping ones included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from keyfob.kit.ids import random_suffix
from keyfob.link.protocol import ProtocolError
from keyfob.link.topics import WAKEUP_SUBSCRIPTION, Channel, parse_wakeup_topic, vehicle_topic
from keyfob.link.transport import (
    AbortableTransport,
    BrokerAddress,
    ConnectHook,
    MessageHandler,
    Outgoing,
    TransportError,
    Will,
    check_pattern,
    check_topic,
    parse_broker_url,
    publish_each,
)
from keyfob.sim.config import SimConfig
from keyfob.sim.corked import cork
from keyfob.sim.fleet import Fleet, LinkFactory, VehicleSpec

log = logging.getLogger(__name__)

DISCONNECT_WITH_WILL = 0x04
SESSION_EXPIRY_S = 86_400


_BACKGROUND: set[asyncio.Task[None]] = set()  # handler and hook runs, kept until done


class _Client(gmqtt.Client):  # type: ignore[misc]
    """gmqtt's client minus a race (a reconnect still in progress when the link is closed
    would open a fresh connection afterwards and leak it), plus a wait for each PUBACK, and
    the PUBLISH and PUBACK packets of one turn of the loop sent in one write (``corked``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pubacks: dict[int, asyncio.Future[None]] = {}

    def publish_acked(
        self, topic: str, payload: bytes, *, qos: int, retain: bool, wait: bool
    ) -> asyncio.Future[None] | None:
        """Publish; when ``wait`` (QoS 1), a future that the broker's PUBACK resolves."""
        message = gmqtt.Message(topic, payload, qos=qos, retain=retain)
        mid, package = self._connection.publish(message)
        if qos == 0:
            return None
        self._persistent_storage.push_message(mid, package)  # replayed until its PUBACK
        if not wait:
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pubacks[mid] = waiter
        return waiter

    def _remove_message_from_queue(self, mid: int) -> None:  # gmqtt calls it on PUBACK
        super()._remove_message_from_queue(mid)
        waiter = self.pubacks.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def lost(self, reason: str) -> None:
        """The connection ended: no PUBACK will come for what is still waiting."""
        waiters, self.pubacks = self.pubacks, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(TransportError(reason))

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        if not self._is_active:
            raise OSError("the link was closed during a reconnect delay")
        connection = await super()._create_connection(*args, **kwargs)
        if not self._is_active:  # closed while the socket was opening
            await connection.close()
            raise OSError("the link was closed during a reconnect")
        cork(connection._protocol, asyncio.get_running_loop())
        return connection


class GmqttLink:
    """One vehicle's MQTT connection (gmqtt), implementing ``AbortableTransport``."""

    __slots__ = (
        "_ack_timeout",
        "_address",
        "_client",
        "_confirm",
        "_connect_timeout",
        "_handler",
        "_hook",
        "_keepalive",
        "_password",
        "_patterns",
        "_persistent",
        "_reconnect_delay",
        "_started",
        "_username",
        "_will",
        "client_id",
    )

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        will: Will | None = None,
        persistent: bool = True,
        reconnect_delay: float = 3.0,
        connect_timeout: float = 10.0,
        keepalive: int = 60,
        ack_timeout: float = 5.0,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        self._address = address
        self._ack_timeout = ack_timeout
        self._confirm = confirm  # the topics whose publish waits for the PUBACK
        self.client_id = client_id
        self._username = username
        self._password = password
        self._will = will
        self._persistent = persistent
        self._reconnect_delay = reconnect_delay
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._handler: MessageHandler | None = None
        self._hook: ConnectHook | None = None
        self._patterns: list[str] = []
        self._client: Any = None
        self._started = False

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.is_connected)

    def set_handler(self, handler: MessageHandler) -> None:
        self._handler = handler

    def set_connect_hook(self, hook: ConnectHook | None) -> None:
        self._hook = hook

    async def start(self) -> None:
        if self._client is not None:
            return
        client = self._new_client()
        address = self._address
        try:
            await asyncio.wait_for(
                client.connect(
                    address.host,
                    address.port,
                    ssl=address.tls,
                    keepalive=self._keepalive,
                    version=MQTTv50,
                ),
                self._connect_timeout,
            )
        except (OSError, TimeoutError, gmqtt.MQTTConnectError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            where = f"{address.host}:{address.port} as {self.client_id}"
            raise TransportError(f"mqtt {where}: {exc or type(exc).__name__}") from None
        self._client = client
        self._set_nodelay()
        for pattern in self._patterns:
            client.subscribe(pattern, qos=1)
        self._started = True
        if self._hook is not None:
            await self._hook()

    async def stop(self) -> None:
        """Graceful disconnect: the broker discards the will."""
        await self._close(reason_code=0)

    async def abort(self) -> None:
        """Disconnect with reason 0x04, so the broker publishes the will (MQTT 5)."""
        await self._close(reason_code=DISCONNECT_WITH_WILL)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        check_topic(topic)
        if not self.connected:
            raise TransportError(f"publish to {topic}: {self.client_id} is not connected")
        try:
            wait = self._confirm is not None and self._confirm(topic)
            waiter = self._client.publish_acked(topic, payload, qos=qos, retain=retain, wait=wait)
        except Exception as exc:  # gmqtt raises whatever its connection hits; translate here
            raise TransportError(f"publish to {topic}: {exc}") from None
        if waiter is None:
            return
        try:
            await asyncio.wait_for(waiter, self._ack_timeout)
        except TimeoutError:
            raise TransportError(
                f"publish to {topic}: no PUBACK in {self._ack_timeout} s"
            ) from None
        except TransportError as exc:
            raise TransportError(f"publish to {topic}: {exc.message}") from None

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[TransportError | None]:
        return await publish_each(self.publish, messages)

    async def subscribe(self, pattern: str) -> None:
        check_pattern(pattern)
        if pattern not in self._patterns:
            self._patterns.append(pattern)
            if self.connected:
                self._client.subscribe(pattern, qos=1)

    def tcp_nodelay(self) -> bool | None:
        sock = self._socket()
        return None if sock is None else bool(sock.getsockopt(*_NODELAY_QUERY))

    def _new_client(self) -> Any:
        will = None
        if self._will is not None:
            will = gmqtt.Message(
                self._will.topic, self._will.payload, qos=self._will.qos, retain=self._will.retain
            )
        options: dict[str, Any] = {}
        if self._persistent:
            options["session_expiry_interval"] = SESSION_EXPIRY_S
        client = _Client(
            self.client_id, clean_session=not self._persistent, will_message=will, **options
        )
        if self._username is not None:
            client.set_auth_credentials(self._username, self._password)
        client.set_config({"reconnect_retries": -1, "reconnect_delay": self._reconnect_delay})
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    async def _close(self, *, reason_code: int) -> None:
        client, self._client = self._client, None
        self._started = False
        if client is None:
            return
        client.lost("the link was closed before the PUBACK")
        with contextlib.suppress(Exception):  # the socket may already be gone
            await client.disconnect(reason_code=reason_code)

    def _on_connect(self, client: Any, flags: Any, rc: Any, properties: Any) -> None:
        if not self._started or client is not self._client:
            return  # the first connection is finished by start()
        self._set_nodelay()
        for subscription in list(client.subscriptions):
            client.resubscribe(subscription)
        if self._hook is not None:
            self._spawn(self._hook())

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        client.lost("the connection dropped before the PUBACK")

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        if self._handler is not None:
            self._spawn(self._handler(topic, payload))
        return 0

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    def _socket(self) -> Any:
        """The connection's socket (asyncio's wrapper); gmqtt has no public accessor."""
        connection = getattr(self._client, "_connection", None)
        transport = getattr(connection, "_transport", None)
        return transport.get_extra_info("socket") if transport is not None else None

    def _set_nodelay(self) -> None:
        # asyncio already sets TCP_NODELAY on TCP transports; make it explicit and certain.
        with contextlib.suppress(OSError):
            sock = self._socket()
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_NODELAY_QUERY = (socket.IPPROTO_TCP, socket.TCP_NODELAY)


def gmqtt_links(
    address: BrokerAddress, *, seed: int = 0, reconnect_delay: tuple[float, float] = (1.0, 5.0)
) -> LinkFactory:
    """Per-vehicle links: the vehicle's own credentials, else those of the URL.

    Each vehicle gets its own reconnect delay drawn from ``reconnect_delay``, so a fleet
    does not hammer a restarted broker all in the same instant.
    """
    rng = random.Random(seed)  # noqa: S311 - reconnect jitter only

    def link(spec: VehicleSpec, will: Will) -> AbortableTransport:
        own = spec.username is not None
        results = vehicle_topic(spec.vin, Channel.RESULT)
        return GmqttLink(
            address,
            client_id=spec.vin,
            username=spec.username if own else address.username,
            password=spec.password if own else address.password,
            will=will,
            reconnect_delay=rng.uniform(*reconnect_delay),
            confirm=lambda topic: topic == results,
        )

    return link


async def run_standalone(
    url: str,
    vehicles: Iterable[VehicleSpec],
    seed: int,
    speed: float,
    stop_event: asyncio.Event,
    *,
    config: SimConfig | None = None,
    reconnect_delay: tuple[float, float] = (1.0, 5.0),
    on_started: Callable[[Fleet], None] | None = None,
) -> Fleet:
    """Simulate ``vehicles`` on the broker at ``url`` until ``stop_event`` is set.

    ``url``'s credentials are those of the SMS stand-in (and of vehicles without their own).
    ``on_started`` receives the running fleet (for scenario knobs). Returns the stopped fleet,
    whose ``counters`` tell what went wrong, if anything.
    """
    address = parse_broker_url(url)
    links = gmqtt_links(address, seed=seed, reconnect_delay=reconnect_delay)
    fleet = Fleet(links, seed=seed, config=config or SimConfig(speed=speed))
    sms = GmqttLink(
        address,
        client_id=f"keyfob-sms-{random_suffix()}",
        username=address.username,
        password=address.password,
        persistent=False,
    )

    async def on_wake(topic: str, payload: bytes) -> None:
        try:
            fleet.deliver_sms(parse_wakeup_topic(topic))
        except ProtocolError as exc:
            log.info("wake-up signal ignored: %s", exc.message)

    sms.set_handler(on_wake)
    await sms.start()
    try:
        await sms.subscribe(WAKEUP_SUBSCRIPTION)
        await fleet.add_many(vehicles)
        if on_started is not None:
            on_started(fleet)
        await stop_event.wait()
    finally:
        await fleet.stop()
        await sms.stop()
    return fleet
