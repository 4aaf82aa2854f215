"""MQTT 3.1.1 control packets: the bytes ``MqttTransport`` writes and reads, nothing else.

Pure functions and one incremental reader, no I/O. Only what a platform client needs: CONNECT
(credentials, will, clean session, keep-alive), PUBLISH at QoS 0 and 1, PUBACK, SUBSCRIBE,
PINGREQ and DISCONNECT out; CONNACK, PUBLISH, PUBACK, SUBACK and PINGRESP in. QoS 2 is never
asked for (every subscription is QoS 1), so a QoS 2 PUBLISH is a protocol error here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
MAX_REMAINING = 268_435_455  # four length bytes

REFUSALS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

_U16 = struct.Struct(">H")


class PacketError(Exception):
    """The peer sent something MQTT 3.1.1 does not allow: the connection must close."""


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int  # 0 at QoS 0


def _length(size: int) -> bytes:
    if size > MAX_REMAINING:
        raise PacketError(f"a packet of {size} bytes is larger than MQTT allows")
    out = bytearray()
    while True:
        byte, size = size % 128, size // 128
        out.append(byte | 0x80 if size else byte)
        if not size:
            return bytes(out)


def _text(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    if len(data) > 0xFFFF:
        raise PacketError("a string field is longer than 65,535 bytes")
    return _U16.pack(len(data)) + data


def connect(
    client_id: str,
    *,
    clean_session: bool,
    keepalive: int,
    username: str | None = None,
    password: str | None = None,
    will: tuple[str, bytes, int, bool] | None = None,
) -> bytes:
    """CONNECT; ``will`` is (topic, payload, qos, retain)."""
    flags = 0x02 if clean_session else 0
    body = _text(client_id)
    if will is not None:
        topic, payload, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        body += _text(topic) + _text(payload)
    if username is not None:
        flags |= 0x80
        body += _text(username)
        if password is not None:
            flags |= 0x40
            body += _text(password)
    variable = _text("MQTT") + bytes((4, flags)) + _U16.pack(keepalive)
    return bytes((CONNECT << 4,)) + _length(len(variable) + len(body)) + variable + body


def publish(topic: str, payload: bytes, *, qos: int, retain: bool, mid: int) -> bytes:
    head = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    name = _text(topic)
    if qos:
        name += _U16.pack(mid)
    return bytes((head,)) + _length(len(name) + len(payload)) + name + payload


def puback(mid: int) -> bytes:
    return bytes((PUBACK << 4, 2)) + _U16.pack(mid)


def subscribe(mid: int, patterns: list[tuple[str, int]]) -> bytes:
    body = _U16.pack(mid) + b"".join(_text(pattern) + bytes((qos,)) for pattern, qos in patterns)
    return bytes(((SUBSCRIBE << 4) | 0x02,)) + _length(len(body)) + body


PINGREQ_PACKET = bytes((PINGREQ << 4, 0))
DISCONNECT_PACKET = bytes((DISCONNECT << 4, 0))


def parse_publish(flags: int, body: bytes) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos > 1:
        raise PacketError(f"a PUBLISH at QoS {qos}: only QoS 0 and 1 are subscribed to")
    if len(body) < 2:
        raise PacketError("a PUBLISH without a topic")
    (size,) = _U16.unpack_from(body)
    start = 2 + size
    mid = 0
    if qos:
        if len(body) < start + 2:
            raise PacketError("a QoS 1 PUBLISH without a packet id")
        (mid,) = _U16.unpack_from(body, start)
        start += 2
    try:
        topic = body[2 : 2 + size].decode()
    except UnicodeDecodeError:
        raise PacketError("a PUBLISH topic that is not UTF-8") from None
    return Publish(topic, bytes(body[start:]), qos, bool(flags & 0x01), mid)


def packet_id(body: bytes) -> int:
    """The packet identifier at the start of a PUBACK or SUBACK."""
    if len(body) < 2:
        raise PacketError("a packet without its packet id")
    mid: int = _U16.unpack_from(body)[0]
    return mid


class PacketReader:
    """Cuts a byte stream into (type, flags, body) packets, however it was split."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, int, bytes]]:
        buffer = self._buffer
        buffer += data
        start = 0
        end = len(buffer)
        try:
            while end - start >= 2:
                size = 0
                shift = 0
                index = start + 1
                while True:
                    if index >= end:
                        return
                    byte = buffer[index]
                    size += (byte & 0x7F) << shift
                    index += 1
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise PacketError("a remaining length longer than four bytes")
                if end - index < size:
                    return
                first = buffer[start]
                body = bytes(buffer[index : index + size])
                start = index + size
                yield first >> 4, first & 0x0F, body
        finally:
            del buffer[:start]
