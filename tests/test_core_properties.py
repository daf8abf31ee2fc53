"""Properties of HybridCore under hypothesis: receive never raises, chunking and determinism, and a state
machine whose invariants (checked by `Session` on every poll) hold over any interleaving of inputs."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from wsproto.events import AcceptConnection

from bybit_hybrid_core._config import Config, Credentials, Link, Timings
from bybit_hybrid_core._core import HybridCore
from bybit_hybrid_core._events import Event, LinkUp, Send
from helpers import WALL_MS, FakeBybit, Session, sample, sample_text

CREDS = Credentials("test-key", "test-secret")


def frames_for(link: Link) -> list[str]:
    """Server messages worth interleaving: acks with the req_ids the core will use, data, garbage."""
    common = [
        sample_text("public-tickers-linear-snapshot-real.json"),
        sample_text("public-tickers-linear-delta-real.json"),
        sample_text("public-orderbook-linear-l50-snapshot-real.json"),
        sample_text("pong-public-linear-real.json"),
        sample_text("pong-private.json"),
        sample_text("subscribe-success-public-option.json"),
        json.dumps({**sample("subscribe-success-public-linear-real.json"), "req_id": "2"}),
        json.dumps({**sample("subscribe-failure-unknown-topic-linear.json"), "req_id": "1"}),
        sample_text("private-position-linear-real-2025.json"),
        '{"topic":"tickers.BTCUSDT","data":[1,2',
        "null",
        '{"op":"bogus","success":false,"ret_msg":"error:invalid op"}',
        "é" * 3,
    ]
    if link is Link.PRIVATE:
        common.append(json.dumps({**sample("auth-success.json"), "req_id": "1"}))
        common.append(sample_text("auth-failure-params-error.json"))
    return common


def core_for(link: Link) -> tuple[HybridCore, FakeBybit]:
    if link is Link.PRIVATE:
        config = Config(categories=(), credentials=CREDS, private_topics=("position",))
    else:
        config = Config(topics=("tickers.BTCUSDT",))
    core = HybridCore(config)
    core.start(0.0, WALL_MS)
    core.connected(link, 0.0)
    server = FakeBybit()
    for action in core.poll().actions:
        if isinstance(action, Send):
            server.feed(action.data)
    return core, server


def run_chunked(link: Link, stream: bytes, sizes: list[int] | None) -> tuple[list[Event], list[Any]]:
    core, server = core_for(link)
    data = server.accept() + stream
    if sizes is None:
        core.receive(link, data, 1.0)
    else:
        pos = 0
        for size in [*sizes, len(data)]:
            if pos >= len(data):
                break
            core.receive(link, data[pos : pos + size], 1.0)
            pos += size
    out = core.poll()
    sent: list[Any] = []
    for action in out.actions:
        if isinstance(action, Send):
            sent += server.feed(action.data)
    return list(out.events), sent


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def server_stream(frames: list[str], extra: list[bytes]) -> bytes:
    server = FakeBybit()  # server frames are not masked: the bytes do not depend on the connection
    server.ws.receive_data(UPGRADE)
    list(server.ws.events())
    server.ws.send(AcceptConnection())
    out = b""
    for i, frame in enumerate(frames):
        out += server.send(frame)
        if i < len(extra):
            out += extra[i]
    return out


LINKS = st.sampled_from([Link.LINEAR, Link.PRIVATE])


@given(LINKS, st.lists(st.integers(0, 14), max_size=10), st.lists(st.integers(1, 40), max_size=300))
def test_one_chunk_or_any_chunking_gives_the_same_events(
    link: Link, picks: list[int], sizes: list[int]
) -> None:
    frames = frames_for(link)
    stream = server_stream([frames[i % len(frames)] for i in picks], [])
    whole = run_chunked(link, stream, None)
    assert run_chunked(link, stream, sizes) == whole
    assert run_chunked(link, stream, [1] * len(stream)) == whole


@given(LINKS, st.binary(max_size=200), st.lists(st.integers(1, 50), max_size=20))
def test_receive_never_raises_on_random_bytes(link: Link, data: bytes, sizes: list[int]) -> None:
    run_chunked(link, data, sizes)
    core, _ = core_for(link)
    core.receive(link, data, 1.0)  # even instead of the HTTP answer
    core.receive(link, b"", 2.0)
    core.poll()


@given(LINKS, st.data())
def test_receive_never_raises_on_mutated_frames(link: Link, data: st.DataObject) -> None:
    frames = frames_for(link)
    stream = bytearray(server_stream(frames[:6], []))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(stream) - 1))
        stream[pos] = data.draw(st.integers(0, 255))
    events, _ = run_chunked(link, bytes(stream), data.draw(st.lists(st.integers(1, 64), max_size=10)))
    assert all(e.at == 1.0 for e in events)


# ------------------------------------------------------------------------------------------ determinism

OPS = st.lists(
    st.tuples(
        st.sampled_from(["up", "tick", "drop", "sub", "ticker", "silence", "garbage"]), st.integers(0, 9)
    ),
    max_size=25,
)


def scripted(seed: int, ops: list[tuple[str, int]]) -> tuple[list[Event], dict[Link, list[Any]]]:
    s = Session(Config(credentials=CREDS, categories=("linear", "spot"), seed=seed))
    s.start()
    for op, n in ops:
        links = sorted(s.open | set(s.dialing))
        link = links[n % len(links)] if links else None
        if op == "up" and s.dialing:
            s.up(sorted(s.dialing)[n % len(s.dialing)])
        elif op == "tick":
            s.advance(n * 3.7)
        elif op == "drop" and link is not None:
            s.drop(link)
        elif op == "sub":
            s.core.subscribe(f"tickers.S{n}USDT", category="spot" if n % 2 else "linear")
            s.pump()
        elif op == "ticker" and Link.LINEAR in s.open:
            s.push(Link.LINEAR, sample_text("public-tickers-linear-snapshot-real.json"))
        elif op == "silence":
            s.answer_pings = not s.answer_pings
        elif op == "garbage" and link in s.open:
            s.deliver(link, bytes([n]) * 3)
    return s.events, s.sent


@given(st.integers(0, 3), OPS)
def test_same_seed_and_inputs_give_the_same_events_and_messages(
    seed: int, ops: list[tuple[str, int]]
) -> None:
    assert scripted(seed, ops) == scripted(seed, ops)


# ------------------------------------------------------------------------------------------ state machine

TOPICS = [
    "tickers.BTCUSDT",
    "orderbook.50.ETHUSDT",
    "publicTrade.SOLUSDT",
    "tickers.NOPEUSDT",
    "position.linear",
    "order",
    "execution.fast",
    "wallet",
]


class CoreMachine(RuleBasedStateMachine):
    """Any interleaving of transport inputs, time and commands. `Session` asserts on every poll: no Send on a
    link that is not open, requests within Bybit's limits, no private subscribe before the auth ack, event
    times never going back, deadlines never in the past."""

    def __init__(self) -> None:
        super().__init__()
        timings = Timings(dial_budget=30, dial_window=60.0)
        config = Config(credentials=CREDS, categories=("linear", "spot"), timings=timings, seed=1)
        self.s = Session(config)
        self.s.bad_topics = {"tickers.NOPEUSDT"}
        self.s.start()

    @precondition(lambda self: bool(self.s.dialing))
    @rule(n=st.integers(0, 3), refuse=st.sampled_from([None, None, None, 403]))
    def connect(self, n: int, refuse: int | None) -> None:
        link = sorted(self.s.dialing)[n % len(self.s.dialing)]
        self.s.connect(link)
        server = self.s.servers.get(link)
        if server is not None:
            self.s.deliver(link, server.reject(refuse) if refuse else server.accept())

    @precondition(lambda self: bool(self.s.open))
    @rule(n=st.integers(0, 3), pick=st.integers(0, 30))
    def receive(self, n: int, pick: int) -> None:
        link = sorted(self.s.open)[n % len(self.s.open)]
        frames = frames_for(link)
        self.s.push(link, frames[pick % len(frames)])

    @precondition(lambda self: bool(self.s.open))
    @rule(n=st.integers(0, 3), data=st.binary(max_size=40))
    def receive_bytes(self, n: int, data: bytes) -> None:
        link = sorted(self.s.open)[n % len(self.s.open)]
        self.s.deliver(link, data)

    @rule(seconds=st.sampled_from([0.1, 1.0, 9.9, 10.0, 20.0, 45.0, 300.0]))
    def tick(self, seconds: float) -> None:
        self.s.advance(seconds)

    @precondition(lambda self: bool(self.s.open or self.s.dialing))
    @rule(n=st.integers(0, 3))
    def lost(self, n: int) -> None:
        links = sorted(self.s.open | set(self.s.dialing))
        self.s.drop(links[n % len(links)])

    @rule(symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]), category=st.sampled_from(["linear", "spot"]))
    def track(self, symbol: str, category: str) -> None:
        self.s.core.track(symbol, category=category)
        self.s.pump()

    @rule(
        topic=st.sampled_from(TOPICS),
        category=st.sampled_from(["linear", "spot", "inverse"]),
        on=st.booleans(),
    )
    def subscribe(self, topic: str, category: str, on: bool) -> None:
        private = not topic.startswith(("tickers", "orderbook", "publicTrade"))
        cat = None if private else category
        if on:
            self.s.core.subscribe(topic, category=cat)
        else:
            self.s.core.unsubscribe(topic, category=cat)
        self.s.pump()

    @rule(pings=st.booleans(), auth=st.booleans(), acks=st.booleans())
    def venue_mood(self, pings: bool, auth: bool, acks: bool) -> None:
        self.s.answer_pings, self.s.auth_ok, self.s.answer_subscribes = pings, auth, acks

    @invariant()
    def status_is_consistent(self) -> None:
        for link, status in self.s.core.status().items():
            assert status.connected == (status.state in ("AUTHENTICATING", "LIVE"))
            if status.connected:
                assert link in self.s.open
            assert len(status.subscriptions) == len(set(status.subscriptions))

    @invariant()
    def link_up_only_when_live(self) -> None:
        ups = [e for e in self.s.events if isinstance(e, LinkUp)]
        assert len(ups) <= sum(1 for _ in self.s.dials)


CoreMachine.TestCase.settings = settings(CoreMachine.TestCase.settings, stateful_step_count=40)
TestCoreMachine = CoreMachine.TestCase
