"""One server-side connection of the FakeExchange: a wsproto SERVER, its endpoint, its timers and its faults.

Outbound text goes through `send_text`, which is where per-link faults act (lost or delayed pongs, duplicated
or reordered messages, poisoned values, a half-open socket). Everything leaves as `ServerSend`/`ServerClose`
actions appended to the exchange's outbox, in order.
"""

from __future__ import annotations

import enum
import heapq
import json
import math
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, RejectConnection, RejectData, TextMessage
from wsproto.utilities import LocalProtocolError

from .replies import PUBLIC_KINDS, ConnIds, dumps

__all__ = ["Phase", "Poison", "ServerAction", "ServerClose", "ServerConn", "ServerSend", "Traffic", "route"]

Traffic = Literal["data", "pong", "reply"]

# BYBIT_V5.md section 3: a public socket that sent nothing was cut at ~61 s (PROBE-PP); private links are
# cut after 10 minutes without ping-pong or pushes, or after max_active_time, checked every 30 s
# (DOCS-CONNECT).
PUBLIC_IDLE = 61.0
PRIVATE_IDLE = 600.0
PRIVATE_CHECK_EVERY = 30.0
REORDER_HOLD = 0.25  # held messages go out at the latest this long after the first was held


class ServerSend(msgspec.Struct, frozen=True):
    """Write `data` to connection `conn`'s socket."""

    conn: int
    data: bytes


class ServerClose(msgspec.Struct, frozen=True):
    """Close connection `conn`'s socket (after any `ServerSend` before it)."""

    conn: int


ServerAction = ServerSend | ServerClose


class Poison(msgspec.Struct):
    """A pending `FakeExchange.poison`: the next `left` topic messages (of `topic`, if set) carry `value`, a
    raw JSON fragment, as `field` of their data object or of every row of their data array."""

    field: str
    value: str
    left: int
    topic: str | None = None


_MARK = "\u0000poison\u0000"  # a placeholder no real value holds; swapped for the raw fragment after dumps


def _poison(text: str, poisons: list[Poison]) -> str:
    """`text` with every pending poison that applies to it; spent ones are removed from `poisons`."""
    try:
        msg = json.loads(text)
    except ValueError:
        return text
    if not isinstance(msg, dict):
        return text
    data = msg.get("data")
    rows: list[Any] = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    rows = [row for row in rows if isinstance(row, dict)]
    if not rows:
        return text
    applied: list[Poison] = []
    for p in poisons:
        if p.topic is not None and p.topic != msg.get("topic"):
            continue
        for row in rows:
            row[p.field] = f"{_MARK}{len(applied)}"
        applied.append(p)
        p.left -= 1
    if not applied:
        return text
    poisons[:] = [p for p in poisons if p.left > 0]
    out = dumps(msg)
    for i, p in enumerate(applied):
        out = out.replace(msgspec.json.encode(f"{_MARK}{i}").decode(), p.value)  # as dumps writes it
    return out


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


def route(target: str) -> tuple[str | None, float | None, str]:
    """Map an upgrade request's target to (kind, max_active_time, problem). kind None means HTTP 404."""
    parts = urlsplit(target)
    path = parts.path.rstrip("/")
    if path == "/v5/private":
        values = parse_qs(parts.query).get("max_active_time")
        if not values:
            return "private", None, ""
        seconds = _parse_active_time(values[0])
        if seconds is None:
            return "private", None, f"max_active_time={values[0]!r} is outside 30s..600s"
        return "private", seconds, ""
    prefix = "/v5/public/"
    if path.startswith(prefix) and path[len(prefix) :] in PUBLIC_KINDS:
        return path[len(prefix) :], None, ""
    return None, None, f"no endpoint at {parts.path!r}"


def _parse_active_time(value: str) -> float | None:
    """`30s`..`600s` or `1m`..`10m` (DOCS-CONNECT)."""
    unit = {"s": 1, "m": 60}.get(value[-1:])
    if unit is None or not value[:-1].isdigit():
        return None
    seconds = float(int(value[:-1]) * unit)
    return seconds if 30 <= seconds <= 600 else None


class ServerConn:
    """The server end of one transport connection."""

    def __init__(self, cid: int, now: float, out: list[ServerAction]) -> None:
        self.id = cid
        self.ws = WSConnection(ConnectionType.SERVER)
        self.phase = Phase.HANDSHAKE
        self.kind: str | None = None
        self.conn_id = ""
        self.authed = False
        self.topics: dict[str, None] = {}  # an ordered set
        self.opened_at = now
        self.last_ping = now  # public idle timer: only a JSON ping resets it
        self.last_activity = now  # private idle timer: pings and pushes reset it
        self.idle_timeout = PUBLIC_IDLE
        # faults, set by FakeExchange methods
        self.half_open = False
        self.lose_pongs = 0
        self.pong_delay = 0.0
        self.duplicate = 0
        self.reorder = 0
        self.faults_on_replies = False
        self.poisons: list[Poison] = []
        self._held: list[str] = []
        self._held_until: float | None = None
        self._delayed: list[tuple[float, int, str]] = []
        self._seq = 0
        self._replies = 0
        self._fragments: list[str] = []
        self._out = out

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def live(self) -> bool:
        return self.phase is Phase.OPEN and not self.half_open

    def open(self, kind: str, conn_id: str, now: float, max_active: float | None) -> None:
        self.kind = kind
        self.conn_id = conn_id
        self.phase = Phase.OPEN
        self.last_ping = self.last_activity = now
        if kind == "private":
            self.idle_timeout = max_active if max_active is not None else PRIVATE_IDLE
        self._write(self.ws.send(AcceptConnection()))

    def reject(self, status: int, body: bytes) -> None:
        """Answer the upgrade with an HTTP error and close (404 wrong path, 403 geo-block)."""
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        data = self.ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += self.ws.send(RejectData(data=body, body_finished=True))
        self._write(data)
        self.close(frame=False)

    def close(self, *, frame: bool, code: int = 1000, reason: str = "") -> None:
        """Close the socket, after a close frame when `frame` (and the WebSocket is open)."""
        if self.phase is Phase.CLOSED:
            return
        if frame and self.phase is Phase.OPEN:
            self._flush_held()
            self._write(self.ws.send(CloseConnection(code=code, reason=reason)))
        self.phase = Phase.CLOSED
        self._out.append(ServerClose(self.id))

    def feed(self, data: bytes) -> list[Event]:
        """Bytes in (b"" = EOF), wsproto events out. Raises wsproto's RemoteProtocolError on garbage."""
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    def text_part(self, part: TextMessage) -> str | None:
        """Join fragmented text messages; the whole text once the last fragment arrived."""
        self._fragments.append(part.data)
        if not part.message_finished:
            return None
        text = "".join(self._fragments)
        self._fragments.clear()
        return text

    def write_event(self, event: Event) -> None:
        """Send a wsproto event (a protocol pong, a close reply) if the connection can still send."""
        if self.phase is Phase.OPEN:
            try:
                self._write(self.ws.send(event))
            except LocalProtocolError:  # the peer's EOF already closed wsproto's side
                return

    def next_conn_id(self) -> str:
        """Private and trade ids change their suffix on every response (BYBIT_V5.md section 8)."""
        if self.kind != "private":
            return self.conn_id
        self._replies += 1
        return ConnIds.private_suffix(self.conn_id, self._replies)

    # ------------------------------------------------------------------------------------------- outbound

    def send_text(self, text: str, now: float, traffic: Traffic) -> None:
        """Queue one text message, applying this link's faults."""
        if not self.live:
            return
        if traffic == "data":
            self.last_activity = now
            if self.poisons:
                text = _poison(text, self.poisons)
        if traffic == "pong":
            if self.lose_pongs > 0:
                self.lose_pongs -= 1
                return
            if self.pong_delay > 0:
                self._seq += 1
                heapq.heappush(self._delayed, (now + self.pong_delay, self._seq, text))
                return
        faulty = traffic == "data" or self.faults_on_replies
        copies = 1
        if faulty and self.duplicate > 0:
            self.duplicate -= 1
            copies = 2
        for _ in range(copies):
            if faulty and self.reorder > 0:
                self._hold(text, now)
            else:
                self._write(self.ws.send(TextMessage(data=text)))

    def send_raw(self, data: bytes) -> None:
        """Bytes straight to the socket, outside WebSocket framing (a fault)."""
        if self.live:
            self._write(data)

    def _hold(self, text: str, now: float) -> None:
        self._held.append(text)
        self.reorder -= 1
        if self._held_until is None:
            self._held_until = now + REORDER_HOLD
        if self.reorder == 0:
            self._flush_held()

    def _flush_held(self) -> None:
        held, self._held, self._held_until = self._held, [], None
        for text in reversed(held):  # reversed: the most reordered a FIFO link can be
            self._write(self.ws.send(TextMessage(data=text)))

    def _write(self, data: bytes) -> None:
        if data and self.phase is not Phase.CLOSED:
            self._out.append(ServerSend(self.id, data))

    # --------------------------------------------------------------------------------------------- timers

    def idle_cut_at(self) -> float | None:
        if self.phase is Phase.CLOSED or self.half_open:
            return None
        if self.kind != "private":
            return self.last_ping + PUBLIC_IDLE
        due = self.last_activity + self.idle_timeout
        checks = math.ceil((due - self.opened_at) / PRIVATE_CHECK_EVERY - 1e-9)
        return self.opened_at + max(checks, 1) * PRIVATE_CHECK_EVERY

    def deadline(self) -> float | None:
        times = [t for t in (self.idle_cut_at(), self._held_until) if t is not None]
        if self._delayed:
            times.append(self._delayed[0][0])
        return min(times, default=None)

    def tick(self, now: float) -> None:
        """Release held and delayed messages that are due, then cut the link if it idled too long."""
        if self._held_until is not None and now >= self._held_until and self.phase is Phase.OPEN:
            self._flush_held()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, text = heapq.heappop(self._delayed)
            if self.live:
                self._write(self.ws.send(TextMessage(data=text)))
        cut = self.idle_cut_at()
        if cut is not None and now >= cut:
            self.close(frame=False)  # Bybit cuts idle links with 1006, no close frame (BYBIT_V5.md section 3)

    def heal(self) -> None:
        """Forget pending per-link faults (a half-open socket stays dead)."""
        self.lose_pongs = self.duplicate = self.reorder = 0
        self.pong_delay = 0.0
        self.poisons.clear()
        self.faults_on_replies = False
        if self._held and self.phase is Phase.OPEN:
            self._flush_held()
