"""The stream `bench_core.py` feeds, and a live `HybridCore` built by hand to feed it to.

The stream comes from the `Venue` (seeded, Bybit's real shapes, BYBIT_V5.md section 5): linear tickers
(snapshot, then deltas of the changed fields every 100 ms), orderbook.50 (snapshot, then deltas that
delete, insert and update real levels) and publicTrade bursts for three symbols, with a Buy position open
on BTCUSDT so that the join prices its mark on every ticker delta that moves it. Every message becomes an
unmasked server WebSocket frame (wsproto SERVER), and the frames of one 100 ms step are cut into reads of
at most `chunk` bytes (16 KiB, one TLS record: what a socket read over TLS hands the adapter).

The core is brought to LIVE outside the timed region, exactly as an adapter would: start -> Dial ->
connected -> the server's 101 for its upgrade request -> (private) auth ack -> subscribe acks -> the REST
position snapshot. The core pings every 20 s of stream time on both links; the stream answers each ping
with a pong in the same step (Bybit's shapes), so no link ever times out during a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from bybit_hybrid_core import Config, Credentials, FetchPositions, HybridCore, Link, Send, Timings
from bybit_hybrid_core.testing import Venue, auth_reply, dumps, pong_reply, subscribe_reply

__all__ = ["FAMILIES", "POSITION", "Entry", "Stream", "framer", "live_core", "make_stream"]

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TOPICS = tuple(f"{kind}.{s}" for s in SYMBOLS for kind in ("tickers", "orderbook.50", "publicTrade"))
POSITION = ("linear", "BTCUSDT", "Buy", "0.5")  # category, symbol, side, size
FAMILIES = ("ticker", "book", "trade")
START_MS = 1_786_659_827_000
STEP = 0.1  # the Venue's market step: one ticker delta per symbol per step, like Bybit's 100 ms
TLS_RECORD = 16384


@dataclass(frozen=True, slots=True)
class Entry:
    """One `core.receive(link, data, now)`: `messages` topic messages per family are in `data`."""

    link: Link
    data: bytes
    now: float
    messages: int


@dataclass(slots=True)
class Stream:
    entries: list[Entry]
    counts: dict[str, int]  # topic messages per family
    size: int  # bytes of topic frames
    pongs: int

    @property
    def messages(self) -> int:
        return sum(self.counts.values())


def config() -> Config:
    return Config(
        categories=("linear",),
        credentials=Credentials("bench-api-key", "bench-api-secret"),
        topics=TOPICS,
        position_categories=("linear",),
        settle_coins=("USDT",),
        # The defaults (pings every 20 s, stale marks after 5 s), but no liveness watchdog: the per-family
        # streams leave the ticker silent on purpose, which it would rightly redial. Its per-message cost
        # (one dict store) is still paid; only its timer, which runs every few seconds, never fires.
        timings=Timings(topic_quiet_after=float("inf"), silent_link_after=float("inf")),
    )


def family(topic: str) -> str:
    return {"tickers": "ticker", "orderbook": "book", "publicTrade": "trade"}[topic.partition(".")[0]]


def framer() -> WSConnection:
    """An OPEN wsproto SERVER connection: `framer().send(TextMessage(...))` is one unmasked server frame."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="stream.bybit.com", target="/v5/public/linear")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    return server


def _steps(messages: int, seed: int) -> Iterator[tuple[float, list[tuple[str, str]]]]:
    """(now, [(family, json text)]) per 100 ms step, snapshots first, until `messages` topic messages."""
    venue = Venue(seed, START_MS)
    venue.open_position(*POSITION[:3], POSITION[3], 0.0)
    first = [venue.snapshot("linear", t, 0.0) for t in TOPICS]
    sent = [(family(m["topic"]), dumps(m)) for m in first if m is not None]
    yield 0.0, sent
    left, step = messages - len(sent), 0
    subscribed = {"linear": set(TOPICS)}
    while left > 0:
        step += 1
        now = step / 10
        pushes = [(family(topic), dumps(m)) for _, topic, m in venue.publish(now, subscribed)][:left]
        left -= len(pushes)
        yield now, pushes


def make_stream(messages: int, seed: int, only: str | None = None, chunk: int = TLS_RECORD) -> Stream:
    """The encoded stream; `only` keeps one family's frames (pongs and timing stay the same).

    `chunk` bytes per read at most, one step's frames together; `chunk=0`: one frame per read.
    """
    server = framer()
    pong = {
        link: server.send(TextMessage(data=dumps(pong_reply(link.value, "", "bench-conn", START_MS))))
        for link in (Link.LINEAR, Link.PRIVATE)
    }
    interval = config().timings.ping_interval
    next_ping = interval  # both links went live at now = 0
    stream = Stream([], dict.fromkeys(FAMILIES, 0), 0, 0)
    for now, pushes in _steps(messages, seed):
        kept = [(fam, text) for fam, text in pushes if only is None or fam == only]
        frames = [server.send(TextMessage(data=text)) for _, text in kept]
        for fam, _ in kept:
            stream.counts[fam] += 1
        stream.size += sum(map(len, frames))
        if now >= next_ping:  # the core pings at its first input at or after this `now`: answer it
            next_ping = now + interval
            stream.entries.append(Entry(Link.PRIVATE, pong[Link.PRIVATE], now, 0))
            stream.pongs += 2
            if chunk:
                frames.append(pong[Link.LINEAR])
            else:
                stream.entries.append(Entry(Link.LINEAR, pong[Link.LINEAR], now, 0))
        if chunk:
            _cut(stream, b"".join(frames), now, len(kept), chunk)
        else:
            stream.entries += [Entry(Link.LINEAR, frame, now, 1) for frame in frames]
    return stream


def _cut(stream: Stream, data: bytes, now: float, messages: int, chunk: int) -> None:
    """One step's bytes as socket reads of at most `chunk` bytes (messages counted on the first read)."""
    for start in range(0, len(data), chunk):
        stream.entries.append(Entry(Link.LINEAR, data[start : start + chunk], now, messages))
        messages = 0


def rest_body(seed: int) -> bytes:
    """GET /v5/position/list as the Venue answers it at now = 0 (the same position as the stream's)."""
    venue = Venue(seed, START_MS)
    venue.open_position(*POSITION[:3], POSITION[3], 0.0)
    query = {"category": "linear", "settleCoin": "USDT", "limit": "200"}
    return json.dumps(venue.rest_position_list(query, 0.0)).encode()


# ---------------------------------------------------------------------------------------- a live core


class _Server:
    """The server end of one link during setup: answers the upgrade, auth and subscribes like Bybit."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.ws = WSConnection(ConnectionType.SERVER)

    def feed(self, data: bytes) -> bytes:
        self.ws.receive_data(data)
        out = b""
        for event in self.ws.events():
            if isinstance(event, Request):
                out += self.ws.send(AcceptConnection())
            elif isinstance(event, TextMessage):
                out += b"".join(self.ws.send(TextMessage(data=dumps(r))) for r in self._answer(event.data))
        return out

    def _answer(self, text: str) -> list[dict[str, Any]]:
        msg = json.loads(text)
        kind, req_id = self.link.value, msg.get("req_id")
        if msg["op"] == "auth":
            return [auth_reply(True, "", req_id, "bench-conn")]
        if msg["op"] == "subscribe":
            return [subscribe_reply(kind, "subscribe", req_id, "bench-conn", ok_topics=msg["args"])]
        raise AssertionError(f"unexpected op during setup: {text}")


def live_core(body: bytes) -> HybridCore:
    """A HybridCore with both links LIVE, every topic confirmed and the position open (all at now = 0)."""
    core = HybridCore(config())
    core.start(0.0, START_MS)
    servers = {link: _Server(link) for link in (Link.LINEAR, Link.PRIVATE)}
    for link in servers:
        core.connected(link, 0.0)
    for _ in range(20):  # a handful of round trips: upgrade, auth, subscribes, the REST answer
        out = core.poll()
        if not out.actions:
            break
        for action in out.actions:
            if isinstance(action, Send):
                reply = servers[action.link].feed(action.data)
                if reply:
                    core.receive(action.link, reply, 0.0)
            elif isinstance(action, FetchPositions):
                core.positions_snapshot(action.request, 200, body, 0.0)
    states = {link.value: status.state for link, status in core.status().items()}
    pending = [s.pending for s in core.status().values() if s.pending]
    if set(states.values()) != {"LIVE"} or pending or len(core.positions()) != 1:
        raise AssertionError(f"setup did not reach LIVE: {states}, pending {pending}, {core.positions()}")
    return core
