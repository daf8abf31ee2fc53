"""Byte-level fuzzing of `HybridCore.receive`: whatever the server sends, nothing raises, and the chunking of
the bytes does not change the events (ARCHITECTURE.md, "The core's contract").

A real FakeExchange does the handshake (and the auth, on the private link) so the fuzz reaches the message
layer; then the server sends a fuzzed stream: mutated real Bybit payloads (shared/bybit-v5-samples),
truncated JSON, arbitrary text and binary frames, and raw bytes that break the WebSocket framing. Two
identical cores get the same stream, one as a single chunk and one cut at random places.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import msgspec
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scenario import CREDS, FAILURES

from bybit_hybrid_core import Config, Endpoints, Event, HybridCore, Link, LinkDown, ProtocolProblem, Send
from bybit_hybrid_core.testing import FakeExchange, ServerSend
from repo_paths import SAMPLES

SAMPLE_TEXTS = sorted(p.read_text() for p in SAMPLES.glob("*.json"))
CONFIG = Config(
    credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"), topics=("orderbook.50.BTCUSDT",)
)
NOW = 1.0

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def mutated_sample(draw: st.DrawFn) -> str:
    """A real payload with a few values replaced, keys dropped or added, then maybe truncated."""
    obj: Any = json.loads(draw(st.sampled_from(SAMPLE_TEXTS)))
    for _ in range(draw(st.integers(0, 3))):
        obj = _mutate(obj, draw)
    text = json.dumps(obj, separators=(",", ":"))
    if draw(st.integers(0, 4)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


def _mutate(obj: Any, draw: st.DrawFn) -> Any:
    if isinstance(obj, dict) and obj:
        key = draw(st.sampled_from(sorted(obj)))
        action = draw(st.sampled_from(["replace", "drop", "descend", "add"]))
        if action == "drop":
            return {k: v for k, v in obj.items() if k != key}
        if action == "add":
            return {**obj, draw(st.text(max_size=8)): draw(json_values)}
        value = _mutate(obj[key], draw) if action == "descend" else draw(json_values)
        return {**obj, key: value}
    if isinstance(obj, list) and obj:
        i = draw(st.integers(0, len(obj) - 1))
        return [*obj[:i], _mutate(obj[i], draw), *obj[i + 1 :]]
    return draw(json_values)


# Weighted towards messages the core will decode (valid or slightly wrong), so the fuzz reaches its state;
# raw bytes come last and rarely, as they end the link (everything after them is dropped).
piece = st.one_of(
    st.sampled_from(SAMPLE_TEXTS).map(lambda t: ("text", t)),
    mutated_sample().map(lambda t: ("text", t)),
    mutated_sample().map(lambda t: ("text", t)),
    st.sampled_from(SAMPLE_TEXTS).map(lambda t: ("text", t)),
    st.text(max_size=60).map(lambda t: ("text", t)),
    st.binary(max_size=40).map(lambda b: ("binary", b)),
)
raw = st.binary(min_size=1, max_size=12).map(lambda b: ("raw", b))


def private_topic_on_a_public_link(link: Link, piece: tuple[str, Any]) -> bool:
    """A private topic's message on a public link: reported and dropped (test below)."""
    if link is Link.PRIVATE or piece[0] != "text":
        return False
    try:
        topic = json.loads(piece[1]).get("topic")
    except (ValueError, AttributeError):
        return False
    return isinstance(topic, str) and topic.split(".")[0] in (
        "position",
        "order",
        "execution",
        "wallet",
        "greeks",
    )


def live_pair(link: Link) -> tuple[HybridCore, FakeExchange, int]:
    """A core whose `link` is up (authenticated on the private link) against a FakeExchange."""
    core, exchange = HybridCore(CONFIG), FakeExchange(0, credentials=CREDS)
    core.start(0.0, exchange.start_ms)
    core.poll()
    core.connected(link, 0.0)
    conn = exchange.accept(0.0)
    for _ in range(4):  # upgrade, (auth, subscribe): a few round trips at t=0
        for action in core.poll().actions:
            if isinstance(action, Send) and action.link is link:
                exchange.receive(conn, action.data, 0.0)
        for served in exchange.poll():
            if isinstance(served, ServerSend):
                core.receive(link, served.data, 0.0)
    return core, exchange, conn


def stream(exchange: FakeExchange, kind: str, pieces: list[tuple[str, Any]]) -> bytes:
    """The bytes the server sends for `pieces` (framed by the exchange's own wsproto connection)."""
    for what, data in pieces:
        exchange.send_garbage(kind, data, raw=what == "raw")
    return b"".join(a.data for a in exchange.poll() if isinstance(a, ServerSend))


def feed(core: HybridCore, link: Link, chunks: list[bytes]) -> list[Event]:
    for chunk in chunks:
        if chunk:  # b"" would mean end of stream
            core.receive(link, chunk, NOW)
    return list(core.poll().events)


def same(events: list[Event]) -> bytes:
    """Events for comparison. A problem's wording may differ with the chunking (wsproto's UTF-8 error says
    where in the *chunk* the bad byte was), so problems and link-downs compare without their text."""
    plain = [
        msgspec.structs.replace(e, detail="", sample="")
        if isinstance(e, ProtocolProblem)
        else msgspec.structs.replace(e, reason="")
        if isinstance(e, LinkDown)
        else e
        for e in events
    ]
    return msgspec.json.encode(plain)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    edges = [0, *marks, len(data)]
    return [data[a:b] for a, b in pairwise(edges) if b > a]


@settings(database=FAILURES)
@given(
    link=st.sampled_from([Link.LINEAR, Link.PRIVATE]),
    pieces=st.tuples(st.lists(piece, min_size=1, max_size=8), st.lists(raw, max_size=1)).map(
        lambda t: t[0] + t[1]
    ),
    points=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_receive_never_raises_and_chunking_does_not_matter(
    link: Link, pieces: list[tuple[str, Any]], points: list[int]
) -> None:
    pieces = [p for p in pieces if not private_topic_on_a_public_link(link, p)]
    whole_core, exchange, _ = live_pair(link)
    chunked_core, _, _ = live_pair(link)
    data = stream(exchange, link.value, pieces)
    whole = feed(whole_core, link, [data])
    chunked = feed(chunked_core, link, cut(data, points))
    assert same(chunked) == same(whole)
    assert all(isinstance(e, Event) for e in whole)
    whole_core.positions(), whole_core.status()  # the state is still usable
    for kind in sorted({type(e).__name__ for e in whole}):
        event(f"emitted {kind}")


@settings(database=FAILURES)
@given(garbage=st.binary(max_size=300), link=st.sampled_from([Link.LINEAR, Link.PRIVATE]))
def test_garbage_instead_of_the_upgrade_answer_never_raises(garbage: bytes, link: Link) -> None:
    core = HybridCore(CONFIG)
    core.start(0.0, 1_767_225_600_000)
    core.connected(link, 0.0)
    core.receive(link, garbage, 0.5)
    core.receive(link, b"", 0.6)
    out = core.poll()
    assert all(isinstance(e, Event) for e in out.events)
    assert out.deadline is None or out.deadline >= 0.6


POSITION = (
    '{"id":"1","topic":"position","creationTime":1737725795605,"data":[{"positionIdx":0,"symbol":"XRPUSDT",'
    '"side":"Buy","size":"4","entryPrice":"2.7862","markPrice":"3.1342","category":"linear","seq":19371738695,'
    '"updatedTime":"1737705600059"}]}'
)


def test_a_position_message_on_a_public_link_is_refused_whatever_the_chunking() -> None:
    """Found by the long run: a `position` message on the *linear* socket opens a position, whose ticker
    subscribe then takes the next req_id-less ack (here a request echo) as its own if, and only if, the
    bytes were cut between the two messages. Fixed: private data on a public link is reported and dropped."""
    pieces = [("text", POSITION), ("text", '{"op":"subscribe","args":["dcp.future"]}')]
    whole_core, exchange, _ = live_pair(Link.LINEAR)
    chunked_core, _, _ = live_pair(Link.LINEAR)
    data = stream(exchange, "linear", pieces)
    whole = feed(whole_core, Link.LINEAR, [data])
    chunked = feed(chunked_core, Link.LINEAR, cut(data, [len(data) - 30]))
    assert whole_core.positions() == {}, "a public socket cannot move the account"
    assert msgspec.json.encode(chunked) == msgspec.json.encode(whole)
