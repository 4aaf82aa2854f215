"""The WebSocket channel on its own, against a real local receiver: one connection per
callback, kept between messages, closed once the callback has sent nothing for ``idle_s``."""

from __future__ import annotations

import json

from keyfob.callbacks.targets import TargetPolicy
from keyfob.notifications.ws_channel import WebSocketChannel
from ws_support import ws_receiver


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_callback_keeps_its_connection_until_it_has_been_idle() -> None:
    clock = Monotonic()
    channel = WebSocketChannel(
        TargetPolicy(allow_private=True), timeout=2.0, idle_s=300.0, monotonic=clock
    )
    async with ws_receiver() as hook:
        try:
            for number in range(3):
                sent = await channel.send("cb-a", hook.url, json.dumps({"n": number}))
                assert sent.delivered
            clock.now += 301
            assert (await channel.send("cb-b", hook.url, json.dumps({"n": 3}))).delivered
            await hook.wait(lambda: hook.ended == [1])
            open_after = channel.open_connections
        finally:
            await channel.close()
    assert [(number, frame["n"]) for number, frame in hook.frames] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 3),
    ]
    assert open_after == 1
