"""The floor under benchmark (b): a raw MQTT request/answer loop through the same broker.

``remote_flow.py`` measures remotes going API → dispatcher → Mosquitto → simulated car → Done.
Whatever keyfob adds on top of the broker only shows next to what the broker alone costs on the
same machine in the same minute, so this runs beside it: a requester publishes QoS 1 requests,
a responder answers each one QoS 1 on another topic, and the requester times the round trip.
Both ends use keyfob's own ``MqttTransport`` (as the dispatcher does) with QoS 1, so
the comparison differs by what keyfob does, not by the client library. One responder answers
everything here, while in the flow each car answers on its own connection.

    python bench/mqtt_rtt.py echo URL                        # the responder, until SIGINT
    python bench/mqtt_rtt.py ask URL CONCURRENCY DURATION    # closed loop, C in flight
    python bench/mqtt_rtt.py ask URL 0 DURATION --rate R     # open loop, R requests/s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from itertools import count

from common import percentile, run_async

from keyfob.link.mqtt import MqttTransport

REQUESTS = "bench/rtt/req"
ANSWERS = "bench/rtt/resp"
WARMUP_S = 1.0


async def echo(url: str) -> None:
    """Answer every request on its answer topic, with the same payload, until SIGINT."""
    # The platform's transport on this side too: a gmqtt client refuses to publish past the
    # broker's receive maximum (20 in flight by default), and one responder answers everything.
    link = MqttTransport(url, client_id="bench-rtt-echo", clean_session=True)

    async def answer(topic: str, payload: bytes) -> None:
        await link.publish(f"{ANSWERS}/{topic.rsplit('/', 1)[1]}", payload, qos=1)

    link.set_handler(answer)
    await link.start()
    await link.subscribe(f"{REQUESTS}/+")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await link.stop()


class Asker:
    """Publishes requests and matches answers to them by their topic's last level."""

    def __init__(self, url: str) -> None:
        self.link = MqttTransport(url, client_id="bench-rtt-ask", clean_session=True)
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.ids = count()
        self.link.set_handler(self._answered)

    async def _answered(self, topic: str, payload: bytes) -> None:
        future = self.waiting.pop(topic.rsplit("/", 1)[1], None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    async def start(self) -> None:
        await self.link.start()
        await self.link.subscribe(f"{ANSWERS}/+")

    async def one(self) -> float:
        """One round trip, in milliseconds."""
        key = str(next(self.ids))
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        started = time.perf_counter()
        await self.link.publish(f"{REQUESTS}/{key}", b'{"v":1}', qos=1)
        return (await asyncio.wait_for(future, 30) - started) * 1000


async def closed_loop(asker: Asker, concurrency: int, duration: float) -> list[float]:
    """``concurrency`` requests always in flight; round trips finished in the window."""
    start = time.perf_counter() + WARMUP_S
    end = start + duration
    kept: list[float] = []

    async def slot() -> None:
        while time.perf_counter() < end:
            rtt = await asker.one()
            if time.perf_counter() >= start:
                kept.append(rtt)

    await asyncio.gather(*(slot() for _ in range(concurrency)))
    return kept


async def open_loop(asker: Asker, rate: float, duration: float) -> list[float]:
    """One request every ``1/rate`` s whatever the answers do (as remotes arrive)."""
    total = int(rate * duration)
    start = time.perf_counter()
    tasks = []
    for index in range(total):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(asker.one()))
    return list(await asyncio.gather(*tasks))


async def ask(url: str, concurrency: int, duration: float, rate: float | None) -> None:
    asker = Asker(url)
    await asker.start()
    started = time.perf_counter()
    cpu = time.process_time()
    if rate:
        kept = await open_loop(asker, rate, duration)
    else:
        kept = await closed_loop(asker, concurrency, duration)
    cpu_share = (time.process_time() - cpu) / (time.perf_counter() - started)
    await asker.link.stop()
    summary = {
        "round_trips": len(kept),
        "rate": len(kept) / duration,
        "p50_ms": percentile(kept, 50),
        "p90_ms": percentile(kept, 90),
        "p99_ms": percentile(kept, 99),
        "asker_cpu": cpu_share,
    }
    print(json.dumps(summary))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("echo", "ask"))
    parser.add_argument("url")
    parser.add_argument("concurrency", type=int, nargs="?", default=64)
    parser.add_argument("duration", type=float, nargs="?", default=10.0)
    parser.add_argument("--rate", type=float, default=None)
    options = parser.parse_args(argv)
    if options.mode == "echo":
        run_async(echo(options.url))
    else:
        run_async(ask(options.url, options.concurrency, options.duration, options.rate))


if __name__ == "__main__":
    main(sys.argv[1:])
