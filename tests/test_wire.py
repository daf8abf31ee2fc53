"""The wire layer: one client WebSocket (wsproto out, our frame reader in), checked against a wsproto server.

A text message comes up as its payload `bytes`; the differential tests against wsproto itself are in
test_frame_reader.py.
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bybit_hybrid_core._errors import LocalProtocolError
from bybit_hybrid_core._link.wire import (
    MAX_MESSAGE_CHARS,
    Wire,
    WireClosed,
    WireEvent,
    WireFailed,
    WireNotice,
    WireRefused,
    WireUpgraded,
)
from helpers import FakeBybit, sample_text


def open_pair(url: str = "wss://stream.bybit.com/v5/public/linear") -> tuple[Wire, FakeBybit]:
    wire = Wire(url)
    server = FakeBybit()
    wire.initiate()
    server.feed(wire.data_to_send())
    assert wire.receive(server.accept()) == [WireUpgraded()]
    assert wire.is_open
    return wire, server


def feed_chunks(wire: Wire, data: bytes, sizes: list[int]) -> list[bytes | WireEvent]:
    events: list[bytes | WireEvent] = []
    pos = 0
    for size in sizes:
        if pos >= len(data):
            break
        events += wire.receive(data[pos : pos + size])
        pos += size
    if pos < len(data):
        events += wire.receive(data[pos:])
    return events


# ------------------------------------------------------------------------------------------- handshake


@pytest.mark.parametrize(
    ("url", "host", "target"),
    [
        ("wss://stream.bybit.com/v5/public/linear", "stream.bybit.com", "/v5/public/linear"),
        ("wss://stream-demo.bybit.com/v5/private", "stream-demo.bybit.com", "/v5/private"),
        (
            "wss://stream.bybit.com/v5/private?max_active_time=60s",
            "stream.bybit.com",
            "/v5/private?max_active_time=60s",
        ),
        ("ws://127.0.0.1:8765/v5/public/spot", "127.0.0.1:8765", "/v5/public/spot"),
    ],
)
def test_handshake_request_names_host_and_target(url: str, host: str, target: str) -> None:
    wire = Wire(url)
    assert not wire.is_open
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    assert server.request is not None
    assert server.request.host == host
    assert server.request.target == target
    assert wire.host == host


@pytest.mark.parametrize(
    "url", ["https://stream.bybit.com/v5/private", "stream.bybit.com", "wss:///v5/private"]
)
def test_bad_url_is_a_local_error(url: str) -> None:
    with pytest.raises(LocalProtocolError, match="ws://"):
        Wire(url)


@pytest.mark.parametrize("status", [403, 404, 401, 502])
def test_refused_upgrade_reports_status_and_then_ignores_input(status: int) -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    events = wire.receive(server.reject(status, b"<html>blocked</html>"))
    assert len(events) == 1
    assert isinstance(events[0], WireRefused)
    assert events[0].status == status
    assert events[0].reason  # the standard phrase, e.g. "Forbidden"
    assert not wire.is_open
    assert wire.receive(b"more") == []
    assert wire.receive(b"") == []


def test_refusal_split_byte_by_byte_is_reported_once() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    data = server.reject(403)
    events = feed_chunks(wire, data, [1] * len(data))
    assert [type(e) for e in events] == [WireRefused]


def test_eof_during_handshake_is_a_close_not_an_exception() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    events = wire.receive(b"HTTP/1.1 101 Swi")
    assert events == []
    events = wire.receive(b"")
    assert len(events) == 1
    assert isinstance(events[0], WireClosed | WireFailed)
    assert not wire.is_open


def test_eof_before_any_answer_is_abnormal_closure() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    assert wire.receive(b"") == [WireClosed(1006, "end of stream before the upgrade")]


def test_unknown_refusal_status_has_an_empty_phrase() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    assert wire.receive(server.reject(599)) == [WireRefused(599, "")]


def test_messages_right_after_the_101_in_the_same_chunk() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    data = server.accept() + server.send({"op": "pong"}) + server.send("x")
    assert wire.receive(data) == [WireUpgraded(), b'{"op": "pong"}', b"x"]


# ------------------------------------------------------------------------------------------- messages


def test_text_both_ways() -> None:
    wire, server = open_pair()
    wire.send_text('{"op":"ping","req_id":"1"}')
    assert server.feed(wire.data_to_send()) == [{"op": "ping", "req_id": "1"}]
    text = sample_text("public-tickers-linear-snapshot-real.json")
    assert wire.receive(server.send(text)) == [text.encode()]


def test_fragmented_message_is_reassembled() -> None:
    wire, server = open_pair()
    text = sample_text("public-orderbook-linear-l50-snapshot-real.json")
    assert wire.receive(server.send_fragmented(text, 7)) == [text.encode()]


@given(st.lists(st.integers(min_value=1, max_value=64), max_size=400), st.integers(min_value=1, max_value=5))
def test_any_chunking_gives_the_same_messages(sizes: list[int], parts: int) -> None:
    wire, server = open_pair()
    texts = [sample_text("public-tickers-linear-delta-real.json"), "é✓ unicode", '{"op":"pong"}']
    data = (
        server.send_fragmented(texts[0], parts)
        + server.send(texts[1])
        + server.ping(b"p")
        + server.send(texts[2])
    )
    events = feed_chunks(wire, data, sizes)
    assert events == [t.encode() for t in texts]
    server.feed(wire.data_to_send())
    assert server.pongs == [b"p"]


def test_protocol_ping_is_answered() -> None:
    wire, server = open_pair()
    assert wire.receive(server.ping(b"abc")) == []
    server.feed(wire.data_to_send())
    assert server.pongs == [b"abc"]


def test_unsolicited_protocol_pong_is_ignored() -> None:
    from wsproto.events import Pong

    wire, server = open_pair()
    assert wire.receive(server.ws.send(Pong(payload=b"x")) + server.send("after")) == [b"after"]


def test_binary_message_is_noticed_once_and_harmless() -> None:
    from wsproto.events import BytesMessage

    wire, server = open_pair()
    data = server.ws.send(BytesMessage(data=b"\x00\x01")) + server.ws.send(BytesMessage(data=b"\x02"))
    assert wire.receive(data) == [WireNotice("unexpected binary message (ignored)")]
    assert wire.is_open
    assert wire.receive(server.send("ok")) == [b"ok"]


def test_send_on_closed_wire_is_a_local_error() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    with pytest.raises(LocalProtocolError):
        wire.send_text("x")


# ------------------------------------------------------------------------------------------- closing


def test_remote_close_is_answered_and_reported() -> None:
    wire, server = open_pair()
    events = wire.receive(server.close(1001, "going away"))
    assert events == [WireClosed(1001, "going away")]
    server.feed(wire.data_to_send())
    assert [code for code, _ in server.closes] == [1001]  # the client echoes the code
    assert not wire.is_open
    assert wire.receive(b"late") == []


def test_local_close_reaches_the_server() -> None:
    wire, server = open_pair()
    wire.close(1000, "bye")
    assert not wire.is_open
    server.feed(wire.data_to_send())
    assert server.closes == [(1000, "bye")]
    # the server's answer completes the handshake
    assert wire.receive(server.close(1000, "bye")) == [WireClosed(1000, "bye")]


def test_eof_after_upgrade_is_abnormal_closure() -> None:
    wire, _ = open_pair()
    assert wire.receive(b"") == [WireClosed(1006, "end of stream")]
    assert wire.receive(b"") == []


# ------------------------------------------------------------------------------------------- garbage


def _frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = False) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    else:
        head += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    if masked:
        head += b"\x00\x00\x00\x00"
    return head + payload


@pytest.mark.parametrize(
    "bad",
    [
        _frame(0x1, b'{"a":1}', masked=True),  # servers must not mask
        _frame(0x3, b"x"),  # reserved opcode
        _frame(0x0, b"orphan continuation"),
        _frame(0x9, b"x" * 130),  # control frame too long
        bytes([0xF1, 0x01, 0x41]),  # RSV bits set without an extension
    ],
)
def test_bad_frames_fail_the_wire_with_a_close_frame(bad: bytes) -> None:
    wire, server = open_pair()
    events = wire.receive(bad)
    assert len(events) == 1
    assert isinstance(events[0], WireFailed)
    assert not wire.is_open
    server.feed(wire.data_to_send())
    assert server.closes and server.closes[0][0] == 1002
    assert wire.receive(_frame(0x1, b"after")) == []


def test_garbage_instead_of_http_fails_the_handshake() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    events = wire.receive(b"\x00\x01garbage\r\n\r\n")
    assert len(events) == 1
    assert isinstance(events[0], WireFailed)


def test_a_frame_declaring_more_than_the_limit_fails_before_its_payload_arrives() -> None:
    wire, server = open_pair()
    header = bytes([0x81, 127]) + struct.pack("!Q", MAX_MESSAGE_CHARS + 10)
    events = wire.receive(header + b"a" * 1000)
    assert len(events) == 1
    assert isinstance(events[0], WireFailed)
    server.feed(wire.data_to_send())
    assert server.closes == [(1002, "protocol error")]


def test_a_fragmented_message_fails_at_the_frame_that_crosses_the_limit() -> None:
    wire, _ = open_pair()
    half = MAX_MESSAGE_CHARS // 2
    first = bytes([0x01, 127]) + struct.pack("!Q", half) + b"a" * half
    assert wire.receive(first) == []  # a partial message, under the limit so far
    assert wire.receive(bytes([0x00, 127]) + struct.pack("!Q", half)) == []  # exactly at the limit
    assert wire.receive(b"a" * half) == []
    events = wire.receive(bytes([0x80, 1]) + b"a")  # one byte over
    assert len(events) == 1
    assert isinstance(events[0], WireFailed)


def test_invalid_utf8_is_delivered_as_bytes_and_the_wire_survives() -> None:
    """Deliberately unlike wsproto (which fails with 1007): the codec's decode reports it later."""
    wire, server = open_pair()
    assert wire.receive(_frame(0x1, b"\xff\xfe") + server.send("ok")) == [b"\xff\xfe", b"ok"]
    assert wire.is_open


def test_a_close_in_the_same_read_as_the_101_is_answered() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    data = server.accept() + server.send("last") + server.close(1001, "bye")
    assert wire.receive(data) == [WireUpgraded(), b"last", WireClosed(1001, "bye")]
    server.feed(wire.data_to_send())
    assert server.closes == [(1001, "")]


def test_the_101_and_the_frames_after_it_split_at_every_byte() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    data = server.accept() + server.send("a") + server.ping(b"p") + server.send_fragmented("bcdef", 3)
    events = feed_chunks(wire, data, [1] * len(data))
    assert events == [WireUpgraded(), b"a", b"bcdef"]
    server.feed(wire.data_to_send())
    assert server.pongs == [b"p"]


def test_a_response_head_ended_by_bare_line_feeds_still_hands_the_frames_on() -> None:
    """h11 accepts LF line ends, so the head ends at the first blank line of either kind."""
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    head = server.accept().replace(b"\r\n", b"\n")
    assert wire.receive(head + server.send("x")) == [WireUpgraded(), b"x"]


def test_a_refusal_with_a_body_in_the_same_read_is_reported_once() -> None:
    wire = Wire("wss://stream.bybit.com/v5/public/linear")
    wire.initiate()
    server = FakeBybit()
    server.feed(wire.data_to_send())
    events = wire.receive(server.reject(403, b"\x81\x01x looks like a frame, is a body"))
    assert [type(e) for e in events] == [WireRefused]


def test_after_a_local_close_text_still_arrives_pings_go_unanswered_and_garbage_fails() -> None:
    wire, server = open_pair()
    wire.close(1000, "bye")
    assert server.feed(wire.data_to_send()) == [] and server.closes == [(1000, "bye")]
    # the server's frames, built by hand: its wsproto would not send after a close
    assert wire.receive(_frame(0x1, b"late") + _frame(0x9, b"p")) == [b"late"]
    assert wire.data_to_send() == b""  # a pong may not follow our close frame
    events = wire.receive(_frame(0x3, b"x"))
    assert len(events) == 1
    assert isinstance(events[0], WireFailed)
    assert wire.data_to_send() == b""  # and neither may a second close frame
    assert wire.receive(b"") == []


@given(st.binary(max_size=300), st.booleans())
def test_receive_never_raises_on_random_bytes(data: bytes, after_upgrade: bool) -> None:
    if after_upgrade:
        wire, _ = open_pair()
    else:
        wire = Wire("wss://stream.bybit.com/v5/public/linear")
        wire.initiate()
    for chunk in (data, data[: len(data) // 2], b""):
        wire.receive(chunk)
    assert not wire.is_open


@given(st.data())
def test_receive_never_raises_on_mutated_frames(data: st.DataObject) -> None:
    wire, server = open_pair()
    good = bytearray(server.send(json.dumps({"topic": "tickers.BTCUSDT", "data": {}})) + server.ping(b"x"))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        pos = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
        good[pos] = data.draw(st.integers(min_value=0, max_value=255))
    events = wire.receive(bytes(good))
    assert all(isinstance(e, bytes | WireFailed | WireNotice | WireClosed) for e in events)
    wire.receive(b"")
