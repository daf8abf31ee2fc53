"""Our inbound frame reader against wsproto itself, the oracle: the same server bytes, however chunked, give
the same text messages in the same order and the same verdict (still open / protocol failure / closed
with a code). Where we deliberately differ (frames.py's docstring), the difference is tested on its own.

Streams are generated as frame specs (text, binary, continuation, ping, pong, close; fragmented, with
control frames between fragments, lengths at the 125/126/65535/65536 boundaries), then some are broken:
RSV bits, a mask, reserved opcodes, bad continuation sequences, oversized or fragmented control frames,
bad close codes and reasons, non-minimal lengths, a 64-bit length with its top bit set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from bybit_hybrid_core import Config, Link, LinkDown, ProtocolProblem
from bybit_hybrid_core._link.frames import Binary, Broken, Close, FrameReader
from bybit_hybrid_core._link.frames import Ping as PingSignal
from bybit_hybrid_core._link.wire import Wire, WireClosed, WireFailed, WireNotice, WireUpgraded
from helpers import FakeBybit, Session

# ------------------------------------------------------------------------------------------ frame specs


@dataclass(frozen=True)
class Spec:
    """One server frame, possibly broken on purpose."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0  # 0x40, 0x20, 0x10
    mask: bytes | None = None  # a masking key: servers must not mask
    form: int = 0  # force the 16-bit (126) or 64-bit (127) length form; 0 = minimal
    top_bit: bool = False  # a 64-bit length with its most significant bit set

    def encode(self) -> bytes:
        n = len(self.payload)
        b0 = (0x80 if self.fin else 0) | self.rsv | self.opcode
        m = 0x80 if self.mask is not None else 0
        form = self.form or (0 if n < 126 else 126 if n < 0x10000 else 127)
        if self.top_bit:
            head = bytes([b0, m | 127]) + struct.pack("!Q", (1 << 63) | n)
        elif form == 0:
            head = bytes([b0, m | n])
        elif form == 126:
            head = bytes([b0, m | 126]) + struct.pack("!H", n)
        else:
            head = bytes([b0, m | 127]) + struct.pack("!Q", n)
        if self.mask is None:
            return head + self.payload
        masked = bytes(b ^ self.mask[i % 4] for i, b in enumerate(self.payload))
        return head + self.mask + masked


def text(s: str) -> Spec:
    return Spec(0x1, s.encode())


BOUNDARY_SIZES = [0, 1, 125, 126, 127, 65535, 65536]
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 4999]
BAD_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535]
RESERVED_OPCODES = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]

payload_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(BOUNDARY_SIZES).map(lambda n: "a" * n),
    st.sampled_from(BOUNDARY_SIZES).map(lambda n: ("é✓" * n)[: max(0, n // 2)]),  # multi-byte
)
control_frame = st.builds(
    Spec,
    st.sampled_from([0x9, 0xA]),
    st.one_of(st.binary(max_size=125), st.sampled_from([b"", b"p" * 125])),
)


@st.composite
def message(draw: st.DrawFn) -> list[Spec]:
    """A text or binary message in 1-4 fragments (cut at any byte, mid-character too), pings between."""
    if draw(st.booleans()):
        opcode, body = 0x1, draw(payload_text).encode()
    else:
        opcode, body = 0x2, draw(st.binary(max_size=300))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    specs: list[Spec] = []
    for i, piece in enumerate(pieces):
        if i:
            specs += draw(st.lists(control_frame, max_size=2))
        specs.append(Spec(opcode if i == 0 else 0x0, piece, fin=i == len(pieces) - 1))
    return specs


close_frame = st.builds(
    lambda code, reason, empty: Spec(0x8, b"" if empty else struct.pack("!H", code) + reason.encode()[:123]),
    st.sampled_from(VALID_CLOSE_CODES),
    st.text(max_size=40).filter(lambda r: len(r.encode()) <= 123),
    st.booleans(),
)


@st.composite
def good_stream(draw: st.DrawFn) -> list[Spec]:
    specs: list[Spec] = []
    for part in draw(st.lists(st.one_of(message(), control_frame.map(lambda f: [f])), max_size=6)):
        specs += part
    if draw(st.booleans()):
        specs.append(draw(close_frame))
        if draw(st.booleans()):
            specs.append(text("after the close"))  # must never be read
    return specs


BREAKS = ("rsv", "mask", "opcode", "orphan", "unfinished", "big-control", "fragmented-control",
          "close-code", "close-1-byte", "close-utf8", "non-minimal", "top-bit")  # fmt: skip


def _break(draw: st.DrawFn, spec: Spec) -> list[Spec]:
    """A broken variant of one frame (or a bad frame put before it)."""
    how = draw(st.sampled_from(BREAKS))
    match how:
        case "rsv":
            return [replace(spec, rsv=draw(st.sampled_from([0x40, 0x20, 0x10, 0x70])))]
        case "mask":
            return [replace(spec, mask=draw(st.binary(min_size=4, max_size=4)))]
        case "opcode":
            return [replace(spec, opcode=draw(st.sampled_from(RESERVED_OPCODES)))]
        case "orphan":
            return [Spec(0x0, b"orphan"), spec]
        case "unfinished":
            return [Spec(0x1, b"never finished", fin=False), text("a new message"), spec]
        case "big-control":
            return [Spec(draw(st.sampled_from([0x8, 0x9, 0xA])), b"x" * draw(st.integers(126, 300))), spec]
        case "fragmented-control":
            return [Spec(draw(st.sampled_from([0x8, 0x9, 0xA])), b"", fin=False), spec]
        case "close-code":
            return [Spec(0x8, struct.pack("!H", draw(st.sampled_from(BAD_CLOSE_CODES))) + b"why")]
        case "close-1-byte":
            return [Spec(0x8, b"\x03")]
        case "close-utf8":
            return [Spec(0x8, struct.pack("!H", 1000) + b"\xff\xfe")]
        case "non-minimal":
            n = len(spec.payload)
            if n > 0xFFFF or (spec.opcode >= 0x8 and draw(st.booleans())):
                return [Spec(0x1, b"short", form=draw(st.sampled_from([126, 127])))]
            return [replace(spec, form=127 if n >= 126 else draw(st.sampled_from([126, 127])))]
        case _:
            return [replace(spec, top_bit=True)]


@st.composite
def any_stream(draw: st.DrawFn) -> list[Spec]:
    specs = draw(good_stream())
    if draw(st.booleans()):
        at = draw(st.integers(0, len(specs)))
        target = specs[at] if at < len(specs) else text("last")
        specs = specs[:at] + _break(draw, target) + specs[at + 1 :]
    return specs


# ------------------------------------------------------------------------------------------ both readers


@dataclass(frozen=True)
class Outcome:
    """What a reader made of a stream: texts (and the first binary notice) in order, pings, verdict."""

    timeline: tuple[bytes | str, ...]
    pings: tuple[bytes, ...]
    verdict: tuple[Any, ...]  # ("open",), ("failed",), ("closed", code, reason)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)] if data else []


def wsproto_client() -> WSConnection:
    """A wsproto client past its upgrade, ready for server frames."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="stream.bybit.com", target="/v5/public/linear")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert [type(e) for e in client.events()] == [AcceptConnection]
    return client


def oracle(chunks: list[bytes]) -> Outcome:
    client = wsproto_client()
    timeline: list[bytes | str] = []
    pings: list[bytes] = []
    parts: list[str] = []
    for chunk in chunks:
        client.receive_data(chunk)
        for event in client.events():
            match event:
                case TextMessage(data=piece, message_finished=finished):
                    parts.append(piece)
                    if finished:
                        timeline.append("".join(parts).encode())
                        parts.clear()
                case BytesMessage():
                    if "binary" not in timeline:
                        timeline.append("binary")
                case Ping(payload=payload):
                    pings.append(bytes(payload))
                case CloseConnection(code=code, reason=reason):
                    # wsproto reports a frame it could not parse as a CloseConnection, staying OPEN
                    failed = client.state is ConnectionState.OPEN
                    verdict = ("failed",) if failed else ("closed", int(code), reason or "")
                    return Outcome(tuple(timeline), tuple(pings), verdict)
    return Outcome(tuple(timeline), tuple(pings), ("open",))


def open_wire() -> tuple[Wire, FakeBybit]:
    wire, server = Wire("wss://stream.bybit.com/v5/public/linear"), FakeBybit()
    wire.initiate()
    server.feed(wire.data_to_send())
    assert wire.receive(server.accept()) == [WireUpgraded()]
    return wire, server


def ours(chunks: list[bytes]) -> tuple[Outcome, FakeBybit]:
    wire, server = open_wire()
    timeline: list[bytes | str] = []
    verdict: tuple[Any, ...] = ("open",)
    for chunk in chunks:
        for item in wire.receive(chunk):
            match item:
                case bytes():
                    timeline.append(item)
                case WireNotice():
                    timeline.append("binary")
                case WireFailed():
                    verdict = ("failed",)
                case WireClosed(code=code, reason=reason):
                    verdict = ("closed", code, reason)
                case _:
                    raise AssertionError(f"unexpected {item!r}")
    if verdict != ("open",):
        assert not wire.is_open
    sent = wire.data_to_send()
    if sent:  # FakeBybit takes b"" for an end of stream
        server.feed(sent)
    return Outcome(tuple(timeline), tuple(server.pongs), verdict), server


def check_against_wsproto(data: bytes, cuts: list[int]) -> Outcome:
    chunks = chunked(data, cuts)
    expected = oracle(chunks)
    got, server = ours(chunks)
    assert got == expected
    # what we sent back: a pong per ping (compared above), then the close our verdict calls for
    match got.verdict:
        case ("failed",):
            assert [code for code, _ in server.closes] == [1002]
        case ("closed", code, _):
            assert [c for c, _ in server.closes] == [1000 if code == 1005 else code]
        case _:
            assert server.closes == []
    return got


# ------------------------------------------------------------------------------------------ differential


@given(good_stream(), st.lists(st.integers(min_value=0), max_size=40), st.data())
def test_good_streams_give_what_wsproto_gives_however_chunked(
    specs: list[Spec], cuts: list[int], data: st.DataObject
) -> None:
    stream = b"".join(s.encode() for s in specs)
    cuts = [c % (len(stream) + 1) for c in cuts]
    got = check_against_wsproto(stream, cuts)
    assert got.verdict[0] in ("open", "closed")
    # and a stream cut off anywhere gives the same messages and pings so far (the binary notice aside:
    # ours comes when the first binary frame is whole, wsproto's with its first payload byte)
    end = data.draw(st.integers(0, len(stream)))
    cut = chunked(stream[:end], [])
    expected, (mine, _) = oracle(cut), ours(cut)
    assert replace(mine, timeline=_texts(mine)) == replace(expected, timeline=_texts(expected))


def _texts(outcome: Outcome) -> tuple[bytes | str, ...]:
    return tuple(item for item in outcome.timeline if item != "binary")


@given(any_stream(), st.lists(st.integers(min_value=0), max_size=40))
def test_any_stream_gets_wsproto_s_verdict_however_chunked(specs: list[Spec], cuts: list[int]) -> None:
    stream = b"".join(s.encode() for s in specs)
    check_against_wsproto(stream, [c % (len(stream) + 1) for c in cuts])


@given(any_stream().filter(lambda specs: sum(len(s.payload) for s in specs) < 1500))
def test_any_small_stream_split_at_every_byte_gets_wsproto_s_verdict(specs: list[Spec]) -> None:
    stream = b"".join(s.encode() for s in specs)
    whole = check_against_wsproto(stream, [])
    assert check_against_wsproto(stream, list(range(len(stream)))) == whole


@pytest.mark.parametrize(
    "bad",
    [
        Spec(0x1, b"x", rsv=0x40),
        Spec(0x1, b"x", mask=b"\x01\x02\x03\x04"),
        Spec(0x3, b"x"),
        Spec(0x0, b"orphan"),
        Spec(0x9, b"x" * 126),
        Spec(0x9, b"", fin=False),
        Spec(0x8, b"\x03"),
        Spec(0x8, struct.pack("!H", 1005)),
        Spec(0x8, struct.pack("!H", 2999)),
        Spec(0x8, struct.pack("!H", 1000) + b"\xff"),
        Spec(0x1, b"x", form=126),
        Spec(0x1, b"x" * 200, form=127),
        Spec(0x1, b"x", top_bit=True),
    ],
    ids=lambda s: repr(s)[:60],
)
def test_each_kind_of_broken_frame_is_a_failure_for_both(bad: Spec) -> None:
    stream = text("before").encode() + bad.encode() + text("after").encode()
    got = check_against_wsproto(stream, [])
    assert got == Outcome((b"before",), (), ("failed",))


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_boundary_lengths_give_what_wsproto_gives(size: int) -> None:
    stream = Spec(0x1, b"a" * size).encode() + Spec(0x9, b"p").encode() + Spec(0x2, b"b" * size).encode()
    got = check_against_wsproto(stream, [3, 5, 200, 70000])
    assert got == Outcome((b"a" * size, "binary"), (b"p",), ("open",))


# ------------------------------------------------------------------------------------ deliberate differences


def test_invalid_utf8_is_wsproto_s_failure_but_our_message() -> None:
    """By design: a bad text message is handed up undecoded and the link survives it."""
    bad = Spec(0x1, "né".encode()[:-1] + b"\xff").encode() + text("next").encode()
    assert oracle([bad]).verdict == ("failed",)  # wsproto: close 1007
    got, server = ours([bad])
    assert got == Outcome(("n\xc3\xff".encode("latin-1"), b"next"), (), ("open",))
    assert server.closes == []


def test_invalid_utf8_is_a_protocol_problem_for_the_link_which_survives() -> None:
    s = Session(Config())
    s.start()
    s.up(Link.LINEAR)
    s.deliver(Link.LINEAR, Spec(0x1, b'{"op":"pong\xff"}').encode())
    assert len(s.of(ProtocolProblem)) == 1
    assert not s.of(LinkDown)
    assert s.core.status()[Link.LINEAR].state == "LIVE"


def test_a_message_over_the_limit_fails_where_wsproto_would_read_on() -> None:
    reader = FrameReader(limit=10)
    assert reader.feed(Spec(0x1, b"a" * 10).encode()) == [b"a" * 10]  # exactly the limit: fine
    (broken,) = reader.feed(Spec(0x1, b"a" * 11).encode()[:4])  # failed on the header alone
    assert isinstance(broken, Broken)
    assert reader.feed(b"more") == []


def test_the_limit_counts_bytes_and_fragments_and_binary_messages() -> None:
    two_byte = "é" * 5  # 5 characters, 10 bytes
    assert FrameReader(limit=10).feed(text(two_byte).encode()) == [two_byte.encode()]
    fragments = Spec(0x1, b"abcdef", fin=False).encode() + Spec(0x0, b"ghijk").encode()
    assert isinstance(FrameReader(limit=10).feed(fragments)[-1], Broken)
    assert FrameReader(limit=11).feed(fragments) == [b"abcdefghijk"]
    assert isinstance(FrameReader(limit=10).feed(Spec(0x2, b"b" * 11).encode())[-1], Broken)


# ------------------------------------------------------------------------------------------ the reader alone

EVERY_KIND = (
    text("hot").encode()
    + Spec(0x1, b"x" * 300).encode()
    + Spec(0x1, b"y" * 70000).encode()
    + Spec(0x1, b"frag", fin=False).encode()
    + Spec(0x9, b"ping").encode()
    + Spec(0xA, b"pong").encode()
    + Spec(0x0, b"mented").encode()
    + Spec(0x2, b"bin", fin=False).encode()
    + Spec(0x0, b"ary").encode()
    + Spec(0x8, struct.pack("!H", 4000) + "adiós".encode()).encode()
    + text("never read").encode()
)
EVERY_KIND_READ = [
    b"hot",
    b"x" * 300,
    b"y" * 70000,
    PingSignal(b"ping"),
    b"fragmented",
    Binary(),
    Close(4000, "adiós", Spec(0x8, struct.pack("!H", 4000) + "adiós".encode()).encode()),
]


def test_the_reader_reads_every_kind_of_frame() -> None:
    reader = FrameReader(limit=1 << 20)
    assert reader.feed(EVERY_KIND) == EVERY_KIND_READ
    assert reader.signals == 3
    assert reader.feed(text("after the close").encode()) == []


@given(st.lists(st.integers(min_value=0, max_value=len(EVERY_KIND)), max_size=60))
def test_the_reader_gives_the_same_items_however_the_bytes_are_cut(cuts: list[int]) -> None:
    reader = FrameReader(limit=1 << 20)
    items = [item for chunk in chunked(EVERY_KIND, cuts) for item in reader.feed(chunk)]
    assert items == EVERY_KIND_READ
    assert all(type(item) is bytes for item in items if isinstance(item, bytes | bytearray))


def test_the_reader_split_at_every_byte_gives_the_same_items() -> None:
    small = EVERY_KIND.replace(Spec(0x1, b"y" * 70000).encode(), Spec(0x1, b"y" * 65536).encode())
    reader = FrameReader(limit=1 << 20)
    items = [item for i in range(len(small)) for item in reader.feed(small[i : i + 1])]
    assert items == [b"y" * 65536 if item == b"y" * 70000 else item for item in EVERY_KIND_READ]


def test_an_empty_close_frame_is_code_1005_and_answered_with_1000() -> None:
    wire, server = open_wire()
    assert wire.receive(Spec(0x8).encode()) == [WireClosed(1005, "")]
    server.feed(wire.data_to_send())
    assert [code for code, _ in server.closes] == [1000]


def test_a_text_frame_under_the_hot_path_limit_check_still_fails_a_non_minimal_length() -> None:
    (broken,) = FrameReader(limit=1 << 20).feed(Spec(0x1, b"x" * 100, form=126).encode())
    assert isinstance(broken, Broken)


def test_a_64_bit_length_with_its_top_bit_set_fails_even_under_a_vast_limit() -> None:
    (broken,) = FrameReader(limit=1 << 64).feed(Spec(0x1, b"x", top_bit=True).encode())
    assert isinstance(broken, Broken)
