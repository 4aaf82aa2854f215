"""A simulated car's packets of one turn go to the broker in one write, in the order made.

What a user would notice if this went wrong: a car's answer split or reordered on the wire (the
platform would read a result before its acks), or a DISCONNECT held back behind a socket that
is closed at once (the broker would publish no last will, or one it should not).
"""

from __future__ import annotations

import asyncio

from keyfob.sim.corked import cork

PUBACK = bytes([0x40, 2, 0, 7])
PUBLISH = bytes([0x32, 5]) + b"topic"
OTHER_PUBLISH = bytes([0x30, 3]) + b"abc"
DISCONNECT = bytes([0xE0, 1, 0x04])
PINGREQ = bytes([0xC0, 0])


class Protocol:
    """Stands in for gmqtt's protocol: what reaches the socket, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write_data(self, data: bytes) -> None:
        self.writes.append(data)


async def test_the_packets_of_one_turn_go_in_one_write_in_their_order() -> None:
    protocol = Protocol()
    cork(protocol, asyncio.get_running_loop())
    protocol.write_data(PUBACK)
    protocol.write_data(PUBLISH)
    protocol.write_data(OTHER_PUBLISH)
    assert protocol.writes == [], "held until the turn ends"
    await asyncio.sleep(0)
    assert protocol.writes == [PUBACK + PUBLISH + OTHER_PUBLISH]
    protocol.write_data(PUBLISH)
    await asyncio.sleep(0)
    assert protocol.writes[1:] == [PUBLISH], "the next turn's packet in a write of its own"


async def test_other_packets_go_at_once_after_what_was_held() -> None:
    protocol = Protocol()
    cork(protocol, asyncio.get_running_loop())
    protocol.write_data(PUBLISH)
    protocol.write_data(DISCONNECT)
    assert protocol.writes == [PUBLISH, DISCONNECT], "nothing left behind the DISCONNECT"
    protocol.write_data(PINGREQ)
    assert protocol.writes[2:] == [PINGREQ]
    await asyncio.sleep(0)
    assert protocol.writes == [PUBLISH, DISCONNECT, PINGREQ], "nothing sent twice"
