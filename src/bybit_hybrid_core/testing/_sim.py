"""Simulation: a HybridCore and a FakeExchange wired in memory, on a virtual clock.

Theory of operation. The simulation plays the adapter and the network. Every action of the core and of
the exchange becomes a delivery on a queue ordered by (time, sequence): a `Dial` connects after the link's
latency, `Send` bytes reach the exchange after it, `ServerSend` bytes reach the core after it, `Hangup` and
`ServerClose` close the socket at the far end after it, and a `FetchPositions` goes to `exchange.rest` and
back (plus any `rest_delay`, answered as a transport failure past the action's timeout). Latency is fixed
per link, so each direction of a link stays FIFO, as TCP is. `advance(seconds)` jumps from one due thing to
the next (a delivery, the core's deadline, the exchange's deadline) and runs it; nothing sleeps.

While it runs it checks what a real network would make visible: a frame the core sends on a link it was told
is closed (or before it connected), a dial while the link's socket is open. Those land in `violations`, next
to the exchange's own record of requests that break Bybit's rules (`exchange.violations`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from random import Random
from urllib.parse import urlsplit

from .._config import Config, Credentials, Link
from .._core import HybridCore
from .._events import Action, Dial, Event, Hangup, PositionKey, PositionUpdate, RestCall, Send
from ._exchange import DEFAULT_START_MS, FakeExchange, ServerAction, ServerClose, ServerSend, VenueLike
from ._sim_chaos import Chaos

__all__ = ["Simulation", "SimulationStuck"]

MAX_SPINS = 10_000  # steps at one instant before the simulation calls it a livelock


class SimulationStuck(RuntimeError):
    """The clock cannot move: something keeps asking to run at the same instant (a livelock bug)."""


@dataclass(eq=False)
class _Socket:
    link: Link
    url: str
    conn: int | None = None  # the exchange's connection, once connected
    core_done: bool = False  # the core hung up, or was told of EOF / loss: it must not send again
    server_closed: bool = False  # the exchange closed it


class Simulation:
    """A `HybridCore` talking to a `FakeExchange` in memory. Deterministic: same seed, same events.

    Args:
        config: the core's configuration (endpoints only need to parse; nothing is dialed for real).
        seed: seeds the exchange, the venue and the network's choices (EOF or reset, chaos faults).
        latency: one-way delay in seconds, for every link or per `Link`.
        rest_latency: one-way delay of REST requests.
        exchange: a ready FakeExchange (default: one built from `seed` and the config's credentials).
        venue: the venue of the default exchange.
        start_ms: wall clock at `now == 0` for both sides.
        publish_interval: how often the exchange draws market pushes from the venue.
        faults: seeded chaos: on average this many random faults per virtual second (0: none; see `calm`).
    """

    def __init__(
        self,
        config: Config,
        seed: int = 0,
        *,
        latency: float | Mapping[Link, float] = 0.005,
        rest_latency: float = 0.02,
        exchange: FakeExchange | None = None,
        venue: VenueLike | None = None,
        start_ms: int = DEFAULT_START_MS,
        publish_interval: float = 0.1,
        faults: float = 0.0,
    ) -> None:
        credentials = config.credentials or Credentials("test-key", "test-secret")
        self.exchange = exchange or FakeExchange(
            seed, credentials=credentials, venue=venue, start_ms=start_ms, publish_interval=publish_interval
        )
        self.config = config
        self.core = HybridCore(config)
        self.now = 0.0
        self.events: list[Event] = []
        self.actions: list[Action] = []
        self.violations: list[str] = []
        self.dials: list[tuple[float, Link]] = []
        self.rest_requests: list[tuple[float, str]] = []  # (when, path) of every REST request the core made
        self._latency = latency
        self._rest_latency = rest_latency
        self._rng = Random(f"sim:{seed}")
        self._queue: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = 0
        self._sockets: dict[Link, _Socket] = {}
        self._by_conn: dict[int, _Socket] = {}
        self._fail_dials = 0
        self._core_deadline: float | None = None
        self.chaos = Chaos(self.exchange, Random(f"chaos:{seed}"), faults)
        self.core.start(0.0, start_ms)
        self._pump()

    def __repr__(self) -> str:
        return f"Simulation(now={self.now:.3f}, events={len(self.events)}, links={sorted(self._sockets)})"

    # ------------------------------------------------------------------------------------------- driving

    def advance(self, seconds: float) -> list[Event]:
        """Run `seconds` of virtual time; returns the events emitted meanwhile (also kept in `events`)."""
        if seconds < 0:
            raise ValueError("advance() takes a duration >= 0")
        end = self.now + seconds
        first = len(self.events)
        self._pump()
        spins = 0
        while (t := self._next_time()) is not None and t <= end:
            spins = spins + 1 if t <= self.now else 0
            if spins > MAX_SPINS:
                raise SimulationStuck(f"no progress at t={self.now}: core deadline {self._core_deadline}, "
                                      f"exchange deadline {self.exchange.deadline()}")  # fmt: skip
            self._step(max(t, self.now))
        self.now = end
        self.exchange.tick(end)  # so exchange passthroughs (open_position...) happen at `now`
        self._pump()
        return self.events[first:]

    def run_until(self, done: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> bool:
        """Advance in `step`s until `done()` or `timeout` virtual seconds passed; whether it got done."""
        end = self.now + timeout
        while not done():
            if self.now >= end:
                return False
            self.advance(min(step, end - self.now))
        return True

    def settle(self) -> None:
        """Advance to just before the exchange's next market push, so nothing sent so far is still in
        flight (one-way latencies shorter than `publish_interval`): both sides then saw the same market."""
        self.advance(max(0.0, 2 * self._max_latency() + self._rest_latency * 2))
        at = self.exchange.next_publish_at
        if at is not None and at - 1e-6 > self.now:
            self.advance(at - 1e-6 - self.now)

    def fail_dials(self, n: int = 1) -> None:
        """The next `n` dials fail (`core.lost(..., "connection refused")`)."""
        self._fail_dials += n

    def calm(self) -> None:
        """Stop the chaos, forget pending refused dials and heal the exchange (half-open sockets stay dead
        until the core notices)."""
        self.chaos.rate = 0.0
        self._fail_dials = 0
        self.exchange.heal()

    # ----------------------------------------------------------------------------------------- inspecting

    def events_of(self, *types: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, types)]

    def connected_links(self) -> frozenset[Link]:
        """Links whose socket is up at the exchange."""
        return frozenset(s.link for s in self._sockets.values() if s.conn is not None and not s.server_closed
                         and not s.core_done)  # fmt: skip

    def conn_of(self, link: Link) -> int | None:
        sock = self._sockets.get(link)
        return None if sock is None or sock.core_done or sock.server_closed else sock.conn

    def last_updates(self) -> dict[PositionKey, PositionUpdate]:
        """The latest `PositionUpdate` of every position key seen."""
        return {e.key: e for e in self.events if isinstance(e, PositionUpdate)}

    def problems(self) -> list[str]:
        """Everything a correct client would never cause: this network's checks and the exchange's."""
        return [*self.violations, *self.exchange.violations]

    # ------------------------------------------------------------------------------------------ the loop

    def _max_latency(self) -> float:
        if isinstance(self._latency, Mapping):
            return max(self._latency.values(), default=0.005)
        return self._latency

    def _latency_of(self, link: Link) -> float:
        if isinstance(self._latency, Mapping):
            return self._latency.get(link, 0.005)
        return self._latency

    def _later(self, delay: float, run: Callable[[float], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, run))

    def _next_time(self) -> float | None:
        times = [
            t for t in (self._core_deadline, self.exchange.deadline(), self.chaos.next_at) if t is not None
        ]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times, default=None)

    def _step(self, t: float) -> None:
        self.now = t
        while self._queue and self._queue[0][0] <= t:
            _, _, run = heapq.heappop(self._queue)
            run(t)
            self._pump()
        if self.chaos.next_at is not None and self.chaos.next_at <= t:
            self.chaos.strike(t)
        deadline = self.exchange.deadline()
        if deadline is not None and deadline <= t:
            self.exchange.tick(t)
        if self._core_deadline is not None and self._core_deadline <= t:
            self.core.tick(t)
        self._pump()

    def _pump(self) -> None:
        out = self.core.poll()
        self._core_deadline = out.deadline
        self.events.extend(out.events)
        for action in out.actions:
            self.actions.append(action)
            self._on_action(action)
        for served in self.exchange.poll():
            self._on_server(served)

    # ------------------------------------------------------------------------------------ core -> network

    def _on_action(self, action: Action) -> None:
        match action:
            case Dial(link=link, url=url):
                self._dial(link, url)
            case Send(link=link, data=data):
                sock = self._sockets.get(link)
                if sock is None or sock.core_done or sock.conn is None:
                    self.violations.append(f"t={self.now:.3f} {link}: Send on a link that is not connected")
                elif not sock.server_closed:
                    self._later(self._latency_of(link), partial(self._to_exchange, sock, data))
            case Hangup(link=link):
                sock = self._sockets.get(link)
                if sock is not None and not sock.core_done:
                    sock.core_done = True
                    if sock.conn is not None and not sock.server_closed:
                        self._later(self._latency_of(link), partial(self._hung_up, sock))
            case RestCall() as fetch:
                self._fetch(fetch)

    def _dial(self, link: Link, url: str) -> None:
        old = self._sockets.get(link)
        if old is not None and not old.core_done and not old.server_closed:
            self.violations.append(f"t={self.now:.3f} {link}: Dial while the link's socket is open")
        sock = _Socket(link, url)
        self._sockets[link] = sock
        self.dials.append((self.now, link))
        self._later(self._latency_of(link), partial(self._connect, sock))

    def _connect(self, sock: _Socket, t: float) -> None:
        if sock.core_done or self._sockets.get(sock.link) is not sock:
            return  # the core gave up on this dial
        if self._fail_dials > 0:
            self._fail_dials -= 1
            sock.core_done = True
            self.core.lost(sock.link, t, "connection refused")
            return
        sock.conn = self.exchange.accept(t)
        self._by_conn[sock.conn] = sock
        self.core.connected(sock.link, t)

    def _to_exchange(self, sock: _Socket, data: bytes, t: float) -> None:
        if sock.conn is not None and not sock.server_closed:
            self.exchange.receive(sock.conn, data, t)

    def _hung_up(self, sock: _Socket, t: float) -> None:
        if sock.conn is not None and not sock.server_closed:
            self.exchange.disconnected(sock.conn, t)
            self._by_conn.pop(sock.conn, None)

    def _fetch(self, fetch: RestCall) -> None:
        request = fetch.request
        parts = urlsplit(request.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        there = self._rest_latency + self.exchange.rest_latency(target)
        timed_out = there + self._rest_latency > fetch.timeout
        self.rest_requests.append((self.now, parts.path))

        def arrive(t: float) -> None:
            status, body = self.exchange.rest(request.method, target, dict(request.headers), t)
            if not timed_out:
                self._later(self._rest_latency, lambda t2: self.core.rest_answer(request, status, body, t2))

        self._later(there, arrive)
        if timed_out:  # the adapter's timeout: a transport failure is status 0 (RestCall's docstring)
            self._later(fetch.timeout, lambda t: self.core.rest_answer(request, 0, b"", t))

    # ------------------------------------------------------------------------------------ network -> core

    def _on_server(self, action: ServerAction) -> None:
        sock = self._by_conn.get(action.conn)
        if sock is None:
            return
        delay = self._latency_of(sock.link)
        if isinstance(action, ServerSend):
            self._later(delay, partial(self._to_core, sock, action.data))
        elif isinstance(action, ServerClose):
            sock.server_closed = True
            del self._by_conn[action.conn]
            self._later(delay, partial(self._closed_to_core, sock))

    def _to_core(self, sock: _Socket, data: bytes, t: float) -> None:
        if not sock.core_done and self._sockets.get(sock.link) is sock:
            self.core.receive(sock.link, data, t)

    def _closed_to_core(self, sock: _Socket, t: float) -> None:
        if sock.core_done or self._sockets.get(sock.link) is not sock:
            return
        sock.core_done = True
        # A peer's close reads as end of stream or as a reset, depending on timing: exercise both.
        if self._rng.random() < 0.5:
            self.core.receive(sock.link, b"", t)
        else:
            self.core.lost(sock.link, t, "connection reset by peer")
