"""``keyfob worker``, ``keyfob dispatcher``, ``keyfob sim`` and ``keyfob listen``."""

from __future__ import annotations

import asyncio
import random
import signal
from typing import Annotated

import typer

from keyfob.cli.checks import check_all, check_broker, check_database, check_listen
from keyfob.cli.defaults import setting
from keyfob.cli.exits import Exit, stop
from keyfob.cli.logs import (
    Format,
    Level,
    LogFormatOption,
    LogLevelOption,
    MetricsHostOption,
    MetricsPortOption,
    setup,
)
from keyfob.cli.settings import build_settings
from keyfob.errors import KeyfobError
from keyfob.kit import heap, loops
from keyfob.sim.fleet import Fleet, VehicleSpec

DbOption = Annotated[
    str | None, typer.Option("--db", help=f"Database URL (KEYFOB_DB).  {setting('db')}")
]
MqttOption = Annotated[
    str | None, typer.Option("--mqtt", help="Broker URL, mqtt://user:pass@host:port (KEYFOB_MQTT).")
]
PrivateWebhooksOption = Annotated[
    bool, typer.Option("--allow-private-webhooks", help="Allow loopback/private targets.")
]


def worker(
    db_url: DbOption = None,
    allow_private_webhooks: PrivateWebhooksOption = False,
    log_level: LogLevelOption = Level.INFO,
    log_format: LogFormatOption = Format.TEXT,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Deliver webhook notifications (alone; run several against PostgreSQL)."""
    setup(log_level, log_format)
    from keyfob.runtime.delivery_role import delivery_role
    from keyfob.runtime.settle import settled_heap
    from keyfob.runtime.standalone import run_roles
    from keyfob.runtime.upkeep_role import table_upkeep

    settings = build_settings(db=db_url)
    if allow_private_webhooks:
        settings.delivery.allow_private_webhooks = True
    check_database(settings)
    metrics = (metrics_host, metrics_port) if metrics_port else None
    loops.run(run_roles(settings, [table_upkeep, delivery_role, settled_heap], metrics=metrics))


def dispatcher(
    db_url: DbOption = None,
    mqtt: MqttOption = None,
    allow_private_webhooks: PrivateWebhooksOption = False,
    log_level: LogLevelOption = Level.INFO,
    log_format: LogFormatOption = Format.TEXT,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Run remotes against vehicles over MQTT (alone; run several against PostgreSQL), and
    with ``delivery.inline``, deliver the notifications of the events it stores."""
    setup(log_level, log_format)
    from keyfob.runtime.settle import settled_heap
    from keyfob.runtime.standalone import run_roles
    from keyfob.runtime.upkeep_role import table_upkeep
    from keyfob.runtime.vehicle_side import vehicle_side

    settings = build_settings(db=db_url, mqtt=mqtt, run_simulator=False)
    if allow_private_webhooks:
        settings.delivery.allow_private_webhooks = True
    if not settings.mqtt:
        typer.echo(
            "keyfob dispatcher needs --mqtt (the in-memory link lives inside serve)", err=True
        )
        raise typer.Exit(2)
    check_all(settings)
    metrics = (metrics_host, metrics_port) if metrics_port else None
    loops.run(run_roles(settings, [table_upkeep, vehicle_side, settled_heap], metrics=metrics))


def sim(
    mqtt: Annotated[str, typer.Option("--mqtt", help="Broker URL, mqtt://user:pass@host:port.")],
    vehicles: Annotated[
        int | None, typer.Option(help="Simulate N new vehicles with generated VINs.")
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option("--db", help="Simulate the registry's simulated vehicles instead."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of behaviours and faults.")] = 7,
    speed: Annotated[float, typer.Option(help="1 = realistic timings, 0 = instant.")] = 1.0,
    log_level: LogLevelOption = Level.INFO,
    log_format: LogFormatOption = Format.TEXT,
) -> None:
    """Simulated vehicles that speak only the wire protocol, on an MQTT broker."""
    setup(log_level, log_format)
    from keyfob.sim.mqtt_fleet import run_standalone
    from keyfob.vehicles.vins import random_vin
    from keyfob.vocabulary import Motorization

    mix = (Motorization.ELECTRIC, Motorization.HYBRID, Motorization.THERMIC)
    if (vehicles is None) == (db_url is None):
        typer.echo("give either --vehicles N or --db URL", err=True)
        raise typer.Exit(2)
    settings = build_settings(mqtt=mqtt)
    check_broker(settings)
    if db_url is not None:
        check_database(build_settings(db=db_url))
        specs = asyncio.run(_registry_specs(db_url))
    else:
        rng = random.Random(seed)  # noqa: S311 - simulation, not secrets
        specs = [VehicleSpec(random_vin(rng), mix[i % 3]) for i in range(vehicles or 0)]
    typer.echo(f"simulating {len(specs)} vehicles on {mqtt.split('@')[-1]} (Ctrl-C to stop)")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_standalone(
            mqtt, specs, seed, speed, stop, on_started=_settled if settings.settle_heap else None
        )

    loops.run(main())


def _settled(_: Fleet) -> None:
    """The fleet is up: what the process holds now is there to stay (``kit.heap``)."""
    heap.settle()


async def _registry_specs(db_url: str) -> list[VehicleSpec]:
    from keyfob.store.engine import Database
    from keyfob.vehicles.service import all_vehicles
    from keyfob.vocabulary import Motorization

    database = Database(build_settings(db=db_url).db)
    try:
        async with database.read() as conn:
            found = await all_vehicles(conn)
    finally:
        await database.dispose()
    return [VehicleSpec(v.vin, Motorization(v.motorization)) for v in found if v.simulated]


def listen(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    secret: Annotated[
        list[str] | None,
        typer.Option(
            help="A callback's signing secret: verify every signature; repeatable (any one "
            "verifies, as while a secret is rotated): webhooks, --stream events, and the --ws "
            "handshake (an unsigned connection is refused with 401)."
        ),
    ] = None,
    fail_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Answer 500 to this fraction of requests.")
    ] = 0.0,
    raw: Annotated[bool, typer.Option("--raw", help="Print the JSON bodies as received.")] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the failures.")] = None,
    ws: Annotated[
        bool,
        typer.Option(
            "--ws", help="Be a WebSocket receiver (a user callback's websocket target) instead."
        ),
    ] = False,
    stream: Annotated[
        str | None,
        typer.Option(
            help="Dial this event stream (.../events/stream, or ws:// .../events/ws) and print "
            "it, resuming from the last event whenever it ends; listens on no port."
        ),
    ] = None,
    login: Annotated[str | None, typer.Option(help="--stream: the partner login.")] = None,
    password: Annotated[str | None, typer.Option(help="--stream: the partner password.")] = None,
    token: Annotated[str | None, typer.Option(help="--stream: a user's access token.")] = None,
    realm: Annotated[
        str | None, typer.Option(help="--stream: the user's realm (x-introspect-realm).")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="--stream: the client_id query parameter.")
    ] = None,
    after: Annotated[
        str | None, typer.Option(help="--stream: start after this event id (else from now).")
    ] = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="--stream: stop after this many notifications.")
    ] = None,
) -> None:
    """A local webhook receiver that prints each notification as it arrives (coloured on a
    terminal unless NO_COLOR is set; a retried delivery shows its attempt number); with --ws a
    WebSocket receiver, with --stream URL a client of a callback's event stream."""
    if ws and stream:
        stop(Exit.USAGE, "choose one of --ws (receive) and --stream (dial)")
    if stream is not None:
        _follow(stream, login, password, token, realm, client_id, after, count, secret or [])
        return
    check_listen(host, port)
    if ws:
        import sys

        from keyfob.listen import ws_receiver

        def say(text: str) -> None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

        try:
            ws_receiver.run(host, port, say, raw=raw, secrets=secret or [])
        except KeyfobError as bad:
            stop(Exit.USAGE, f"--secret: {bad.message}")
        return
    from keyfob.listen.receiver import run

    run(port, host, secret=secret, fail_rate=fail_rate, raw=raw, seed=seed)


def _follow(
    url: str,
    login: str | None,
    password: str | None,
    token: str | None,
    realm: str | None,
    client_id: str | None,
    after: str | None,
    count: int | None,
    secrets: list[str],
) -> None:
    import sys

    from keyfob.listen import stream_client
    from keyfob.listen.receiver import use_colour
    from keyfob.notifications.signing import secret_key

    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        stop(Exit.USAGE, f"--stream: an http(s):// or ws(s):// URL, got {url!r}")
    credentials = stream_client.Credentials(login, password, token, realm, client_id)
    for each in secrets:
        try:
            secret_key(each)
        except KeyfobError as bad:
            stop(Exit.USAGE, f"--secret: {bad.message}")
    try:
        stream_client.run(
            url,
            credentials,
            count=count,
            after=after,
            secrets=secrets,
            out=sys.stdout,
            colour=use_colour(sys.stdout),
        )
    except stream_client.StreamRefused as refused:
        stop(Exit.REFUSED, f"the stream refused: {refused.message}")
