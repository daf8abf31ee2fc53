"""Test helpers: a tiny fake Bybit per link, on a wsproto SERVER connection (h11's ConnectionPair idea).

Client frames are masked with random keys, so tests assert on what `FakeBybit` *decodes*, never on bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from bybit_hybrid_core._config import Config, Link
from bybit_hybrid_core._core import HybridCore
from bybit_hybrid_core._events import Action, Dial, Event, Hangup, Output, Send
from bybit_hybrid_core._link.subs import private_family
from repo_paths import SAMPLES

__all__ = ["WALL_MS", "FakeBybit", "Session", "sample", "sample_text"]

E = TypeVar("E", bound="Event")


def sample(name: str) -> Any:
    """A real Bybit payload from the shared samples directory, parsed."""
    return json.loads((SAMPLES / name).read_text())


def sample_text(name: str) -> str:
    return Path(SAMPLES / name).read_text()


class FakeBybit:
    """The server end of one WebSocket: feed it the client's bytes, read back what it decoded.

    Attributes:
        request: the upgrade request once it arrived (host, target).
        messages: every text message the client sent, JSON-decoded when possible, in order.
        pings / pongs / closes: protocol-level frames seen from the client.
    """

    def __init__(self) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None
        self.messages: list[Any] = []
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.closes: list[tuple[int, str]] = []
        self.authed = False  # the auth ack was delivered on this socket
        self.held: set[str] = set()  # every topic ever subscribed on this socket (an upper bound)
        self._partial = ""

    def feed(self, data: bytes) -> list[Any]:
        """Take bytes the client sent; return the JSON messages they completed."""
        new: list[Any] = []
        if self.ws.state is ConnectionState.CLOSED:
            return new
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            match event:
                case Request():
                    self.request = event
                case TextMessage(data=text, message_finished=finished):
                    self._partial += text
                    if finished:
                        whole, self._partial = self._partial, ""
                        try:
                            new.append(json.loads(whole))
                        except ValueError:
                            new.append(whole)
                case Ping(payload=payload):
                    self.pings.append(bytes(payload))
                case Pong(payload=payload):
                    self.pongs.append(bytes(payload))
                case CloseConnection(code=code, reason=reason):
                    self.closes.append((code, reason or ""))
        self.messages.extend(new)
        return new

    def accept(self) -> bytes:
        assert self.request is not None, "the client has not sent its upgrade request yet"
        return self.ws.send(AcceptConnection())

    def reject(self, status: int, body: bytes = b"") -> bytes:
        data = self.ws.send(RejectConnection(status_code=status, has_body=bool(body)))
        if body:
            from wsproto.events import RejectData

            data += self.ws.send(RejectData(data=body))
        return data

    def send(self, payload: Any) -> bytes:
        """A text frame: a str as is, anything else JSON-encoded."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return self.ws.send(TextMessage(data=text))

    def send_fragmented(self, text: str, parts: int) -> bytes:
        step = max(1, len(text) // parts)
        chunks = [text[i : i + step] for i in range(0, len(text), step)] or [""]
        out = b""
        for i, chunk in enumerate(chunks):
            out += self.ws.send(TextMessage(data=chunk, message_finished=i == len(chunks) - 1))
        return out

    def ping(self, payload: bytes = b"hi") -> bytes:
        return self.ws.send(Ping(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        return self.ws.send(CloseConnection(code=code, reason=reason))

    def ops(self, op: str) -> list[dict[str, Any]]:
        """Decoded client messages with this `op`."""
        return [m for m in self.messages if isinstance(m, dict) and m.get("op") == op]


# ------------------------------------------------------------------------------------- driving a core


PONG_SAMPLES = {
    Link.LINEAR: "pong-public-linear-real.json",
    Link.INVERSE: "pong-public-linear-inverse.json",
    Link.SPOT: "pong-public-spot.json",
    Link.OPTION: "pong-public-option-spread.json",
    Link.PRIVATE: "pong-private.json",
}
SUB_OK_SAMPLES = {
    Link.LINEAR: "subscribe-success-public-linear-real.json",
    Link.INVERSE: "subscribe-success-public-linear-inverse.json",
    Link.SPOT: "subscribe-success-public-spot.json",
    Link.PRIVATE: "subscribe-success-private-real-2025.json",
}
WALL_MS = 1_700_000_000_000


class Session:
    """A `HybridCore` wired by hand to one `FakeBybit` per link; answers like Bybit when `auto` is on.

    Checks on every poll: no Send on a link whose transport is not open, event times never go back, and the
    deadline is None or not in the past.
    """

    def __init__(self, config: Config, *, auto: bool = True, auto_connect: bool = False) -> None:
        self.core = HybridCore(config)
        self.config = config
        self.now = 0.0
        self.auto = auto
        self.auto_connect = auto_connect
        self.auth_ok = True
        self.answer_pings = True
        self.answer_subscribes = True
        self.bad_topics: set[str] = set()
        self.servers: dict[Link, FakeBybit] = {}
        self.open: set[Link] = set()
        self.dialing: dict[Link, str] = {}
        self.dials: list[tuple[float, Dial]] = []
        self.hangups: list[tuple[float, Hangup]] = []
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.sent: dict[Link, list[Any]] = {}
        self.deadline: float | None = None
        self.refuse_with: int | None = None  # auto_connect answers the upgrade with this HTTP status
        self._inbox: list[tuple[str, Link, bytes]] = []

    # -- inputs ---------------------------------------------------------------------------------------

    def start(self) -> Output:
        self.core.start(self.now, WALL_MS)
        return self.pump()

    def connect(self, link: Link) -> Output:
        assert link in self.dialing, f"{link} was not dialed"
        del self.dialing[link]
        self.servers[link] = FakeBybit()
        self.open.add(link)
        self.core.connected(link, self.now)
        return self.pump()

    def accept(self, link: Link) -> Output:
        return self.deliver(link, self.servers[link].accept())

    def up(self, link: Link) -> Output:
        self.connect(link)
        return self.accept(link)

    def push(self, link: Link, payload: Any) -> Output:
        return self.deliver(link, self.servers[link].send(payload))

    def deliver(self, link: Link, data: bytes) -> Output:
        self.core.receive(link, data, self.now)
        return self.pump()

    def drop(self, link: Link, reason: str = "reset by peer") -> Output:
        self.open.discard(link)
        self.dialing.pop(link, None)
        self.servers.pop(link, None)
        self.core.lost(link, self.now, reason)
        return self.pump()

    def advance(self, seconds: float) -> None:
        """Move the clock, ticking at every deadline on the way (aioquic tests style)."""
        target = self.now + seconds
        while self.deadline is not None and self.deadline <= target:
            self.now = max(self.now, self.deadline)
            self.core.tick(self.now)
            self.pump()
        self.now = target
        self.core.tick(self.now)
        self.pump()

    # -- outputs --------------------------------------------------------------------------------------

    def pump(self) -> Output:
        """Poll, perform every action, answer like Bybit, until nothing is left; return the first poll."""
        first: Output | None = None
        while True:
            out = self.core.poll()
            first = first or out
            self._check(out)
            for action in out.actions:
                self._perform(action)
            self.events += out.events
            self.deadline = out.deadline
            if not self._inbox:
                return first
            kind, link, data = self._inbox.pop(0)
            if kind == "connect" and link in self.dialing:
                del self.dialing[link]
                self.servers[link] = FakeBybit()
                self.open.add(link)
                self.core.connected(link, self.now)
                self._inbox.append(("accept", link, b""))
            elif kind == "accept" and link in self.open:
                server = self.servers[link]
                reply = server.reject(self.refuse_with) if self.refuse_with else server.accept()
                self.core.receive(link, reply, self.now)
            elif kind in ("data", "auth-ok") and link in self.open:
                if kind == "auth-ok":
                    self.servers[link].authed = True
                self.core.receive(link, data, self.now)

    def _check(self, out: Output) -> None:
        assert out.deadline is None or out.deadline >= self.now
        times = [e.at for e in self.events[-1:]] + [e.at for e in out.events]
        assert times == sorted(times), "event times went back"
        assert all(e.at <= self.now for e in out.events)

    def _perform(self, action: Action) -> None:
        self.actions.append(action)
        match action:
            case Dial(link=link, url=url):
                assert link not in self.open and link not in self.dialing, f"second Dial for {link}"
                self.dials.append((self.now, action))
                self.dialing[link] = url
                if self.auto_connect:
                    self._inbox.append(("connect", link, b""))
            case Send(link=link, data=data):
                assert link in self.open, f"Send on {link}, whose transport is not open"
                server = self.servers[link]
                new = server.feed(data)
                self.sent.setdefault(link, []).extend(new)
                for msg in new:
                    self._check_request(link, server, msg)
                    reply = self._answer(link, msg) if self.auto else None
                    if reply is not None:
                        kind = "auth-ok" if msg.get("op") == "auth" and reply.get("success") else "data"
                        self._inbox.append((kind, link, server.send(reply)))
            case Hangup(link=link):
                self.hangups.append((self.now, action))
                self.open.discard(link)
                self.dialing.pop(link, None)
                self.servers.pop(link, None)
            case _:
                pass

    def _check_request(self, link: Link, server: FakeBybit, msg: Any) -> None:
        """Bybit's limits (BYBIT_V5.md section 4), checked on every decoded request."""
        if not isinstance(msg, dict) or msg.get("op") not in ("subscribe", "unsubscribe"):
            return
        args = msg["args"]
        assert 1 <= len(args) <= 10, f"{len(args)} args in one request"
        families = [f for f in map(private_family, args) if f is not None]
        assert not any(a[0] == b[0] and a[1] != b[1] for a in families for b in families), args
        if link is Link.PRIVATE:
            assert server.authed, f"private {msg['op']} before the auth ack: {args}"
            return
        assert not families, f"private topics on the {link} link: {args}"
        if msg["op"] == "subscribe":
            server.held.update(args)
        assert sum(len(t) for t in server.held) <= 21_000
        assert link.category != "option" or len(server.held) <= 2_000

    def _answer(self, link: Link, msg: Any) -> Any:
        if not isinstance(msg, dict):
            return None
        op = msg.get("op")
        if op == "auth":
            if self.auth_ok:
                return {**sample("auth-success.json"), "req_id": msg.get("req_id")}
            return sample("auth-failure-params-error.json")
        if op == "ping":
            if not self.answer_pings:
                return None
            pong = sample(PONG_SAMPLES[Link.of(link.category) if link.is_public else link])
            if "req_id" in pong:
                pong["req_id"] = msg.get("req_id")
            return pong
        if op in ("subscribe", "unsubscribe") and self.answer_subscribes:
            return self._sub_reply(link, op, msg)
        return None

    def _sub_reply(self, link: Link, op: str, msg: dict[str, Any]) -> Any:
        topics = list(msg.get("args", []))
        bad = [t for t in topics if t in self.bad_topics]
        if link.category == "option" and op == "subscribe":
            reply = sample("subscribe-success-public-option.json")
            reply["data"] = {"failTopics": bad, "successTopics": [t for t in topics if t not in bad]}
            return reply
        if link.category == "spot" and len(topics) > 10:
            return {**sample("subscribe-failure-args-size-spot.json"), "req_id": msg.get("req_id")}
        if bad and op == "subscribe":
            failure = sample("subscribe-failure-unknown-topic-linear.json")
            return {
                **failure,
                "ret_msg": f"error:handler not found,topic:{bad[0]}",
                "req_id": msg.get("req_id"),
            }
        ok = sample(SUB_OK_SAMPLES.get(Link.of(link.category), "subscribe-success-public-linear-real.json"))
        if op == "unsubscribe":
            ok = sample("unsubscribe-success-public.json")
        return {**ok, "req_id": msg.get("req_id")}

    # -- queries --------------------------------------------------------------------------------------

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def ops(self, link: Link, op: str) -> list[dict[str, Any]]:
        return [m for m in self.sent.get(link, []) if isinstance(m, dict) and m.get("op") == op]

    def subscribed_topics(self, link: Link) -> list[str]:
        return [t for m in self.ops(link, "subscribe") for t in m["args"]]
