"""The MQTT 3.1.1 bytes the platform's transport writes and reads."""

from __future__ import annotations

import pytest

from keyfob.link import mqtt_packets as packets


def read_all(*chunks: bytes) -> list[tuple[int, int, bytes]]:
    reader = packets.PacketReader()
    found: list[tuple[int, int, bytes]] = []
    for chunk in chunks:
        found.extend(reader.feed(chunk))
    return found


def test_connect_carries_credentials_will_and_session_flags() -> None:
    data = packets.connect(
        "keyfob-1",
        clean_session=False,
        keepalive=30,
        username="platform",
        password="s3cret",
        will=("vehicles/x/presence", b"offline", 1, True),
    )
    ((kind, flags, body),) = read_all(data)
    assert (kind, flags) == (packets.CONNECT, 0)
    assert body[:6] == b"\x00\x04MQTT"
    assert body[6] == 4  # protocol level 4: MQTT 3.1.1
    # user name, password, will retain, will QoS 1, will flag; not clean session
    assert body[7] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04
    assert body[8:10] == b"\x00\x1e"
    assert body[10:] == (
        b"\x00\x08keyfob-1\x00\x13vehicles/x/presence\x00\x07offline\x00\x08platform\x00\x06s3cret"
    )


def test_connect_without_credentials_asks_for_a_clean_session() -> None:
    ((_, _, body),) = read_all(packets.connect("c", clean_session=True, keepalive=60))
    assert body[7] == 0x02
    assert body[10:] == b"\x00\x01c"


def test_a_publish_reads_back_as_it_was_written() -> None:
    payload = b'{"v":1}' * 40  # a remaining length on two bytes
    data = packets.publish("keyfob/v1/VIN/cmd", payload, qos=1, retain=True, mid=513)
    ((kind, flags, body),) = read_all(data)
    assert kind == packets.PUBLISH
    message = packets.parse_publish(flags, body)
    assert message == packets.Publish("keyfob/v1/VIN/cmd", payload, 1, True, 513)


def test_a_qos_0_publish_has_no_packet_id() -> None:
    data = packets.publish("t", b"x", qos=0, retain=False, mid=0)
    assert data == b"\x30\x04\x00\x01tx"
    ((_, flags, body),) = read_all(data)
    assert packets.parse_publish(flags, body) == packets.Publish("t", b"x", 0, False, 0)


def test_packets_split_anywhere_in_the_stream_come_out_whole_and_in_order() -> None:
    stream = (
        packets.publish("a/b", b"1" * 300, qos=1, retain=False, mid=1)
        + packets.puback(7)
        + packets.PINGREQ_PACKET
        + packets.publish("c", b"", qos=0, retain=False, mid=0)
    )
    for cut in range(1, len(stream)):
        found = read_all(stream[:cut], stream[cut:])
        assert [kind for kind, _, _ in found] == [
            packets.PUBLISH,
            packets.PUBACK,
            packets.PINGREQ,
            packets.PUBLISH,
        ]
        assert packets.packet_id(found[1][2]) == 7
    byte_by_byte = read_all(*(stream[i : i + 1] for i in range(len(stream))))
    assert len(byte_by_byte) == 4


def test_subscribe_asks_each_pattern_at_its_qos() -> None:
    ((kind, flags, body),) = read_all(packets.subscribe(9, [("a/+", 1), ("b/#", 0)]))
    assert (kind, flags) == (packets.SUBSCRIBE, 2)
    assert body == b"\x00\x09\x00\x03a/+\x01\x00\x03b/#\x00"


def test_remaining_lengths_use_up_to_four_bytes() -> None:
    big = b"x" * 2_097_152  # needs four length bytes
    data = packets.publish("t", big, qos=0, retain=False, mid=0)
    assert data[1:5] == bytes((0x83, 0x80, 0x80, 0x01))
    ((_, flags, body),) = read_all(data)
    assert packets.parse_publish(flags, body).payload == big


def test_a_fifth_length_byte_is_a_protocol_error() -> None:
    reader = packets.PacketReader()
    with pytest.raises(packets.PacketError, match="four bytes"):
        list(reader.feed(b"\x30\xff\xff\xff\xff\x01"))


def test_a_qos_2_publish_is_refused() -> None:
    with pytest.raises(packets.PacketError, match="QoS 2"):
        packets.parse_publish(0x04, b"\x00\x01t\x00\x01x")


def test_a_publish_cut_short_is_refused() -> None:
    with pytest.raises(packets.PacketError, match="packet id"):
        packets.parse_publish(0x02, b"\x00\x01t\x00")
    with pytest.raises(packets.PacketError, match="topic"):
        packets.parse_publish(0x00, b"\x00")


def test_too_long_a_topic_cannot_be_written() -> None:
    with pytest.raises(packets.PacketError, match="65,535"):
        packets.publish("t" * 70_000, b"", qos=0, retain=False, mid=0)
