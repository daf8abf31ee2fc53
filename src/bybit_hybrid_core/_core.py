"""`HybridCore`: the one public stateful class, composing links, subscriptions and the data plane.

The adapter feeds it transport facts (`connected`, `receive`, `lost`) and the clock (`now` on every input,
`tick`); the application gives it commands (`track`, `subscribe`, ...). Every input first runs the timers
that are due, then does its work; results (actions for the adapter, events for the application, the next
deadline) come out only through `poll()` (h2's buffered output, aioquic's `now` on every input).

Routing (BYBIT_V5.md sections 1, 4, 5, 6): one public link per category in use, one private link iff
credentials. Private topic names go to the private link; a public topic needs `category=` unless exactly
one category is configured. The desired topics of a category are the user's plus what the data plane wants
(tickers of open positions, pins), re-read whenever the data plane's `wanted_version` changes; the private
link's are the user's plus the configured private topics. A category's topics are placed on its first
link until that connection's limits (21,000 characters of args; 2,000 option args) are reached, then on
`linear-2`, `linear-3`, ... (`MAX_SHARDS`), which are dialed on first need within the shared dial budget.
A topic stays on the link it was placed on for as long as it is desired (no churn). The data plane's topics
are *needed*: refused, they are retried with backoff (`_subs`); the user's are reported once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import attrgetter
from random import Random

import msgspec

from ._codec import PRIVATE_MESSAGES, PUBLIC_MESSAGES, TickerData, TopicMessage
from ._config import CATEGORIES, MAX_SHARDS, Config, Link, Mode
from ._errors import LocalProtocolError
from ._events import (
    Action,
    Event,
    HealthChanged,
    Level,
    LinkDown,
    LinkUp,
    Output,
    Position,
    PositionKey,
    ProtocolProblem,
    RestRequest,
    Subscribed,
)
from ._health import EventRate, Health, LatencyRecorder, LinkStatus, Metrics
from ._link import (
    OPTION_MAX_ARGS,
    PUBLIC_MAX_ARG_CHARS,
    DialBudget,
    Input,
    LinkConnection,
    Produced,
    private_family,
)
from ._monitor import HEALTH_EVENTS, STREAM_HEALTH_EVENTS, HealthMonitor, LinkView, metrics
from ._plane import DataPlane

__all__ = ["HybridCore"]

_NOT_MESSAGES = (Event, Action)  # what else a link produces


# The events a health verdict depends on (market data never changes one): `emit` tells the monitor of these.
_VERDICT_EVENTS = frozenset(HEALTH_EVENTS - STREAM_HEALTH_EVENTS)
_AT = attrgetter("at")
_UNKNOWN = object()  # `_plane_due` when it must be asked again
_SMALL_BATCH = 8  # below this many events, `_tally` counts them one by one (measured: about the break-even)


class HybridCore:
    """A sans-IO Bybit V5 client: feed it bytes and time, `poll()` for actions, events and a deadline.

    Args:
        config: endpoints, credentials, categories, topics, timings and the seed of the only random source.

    Raises:
        LocalProtocolError: when `config.topics` cannot be routed (a public topic with several categories
            configured, or a private topic without credentials).
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._urls = config.urls
        self._rng = Random(config.seed)
        self._budget = DialBudget(config.timings.dial_budget, config.timings.dial_window)
        self._links: dict[Link, LinkConnection] = {}
        self._user: dict[Link, set[str]] = {}  # by the category's first link (or PRIVATE)
        self._placed: dict[str, Link] = {}  # public topic -> the link (shard) it is subscribed on
        self._events: list[Event] = []
        self._actions: list[Action] = []
        self._req_ids = 0
        self._started = False
        self._now = 0.0
        self._wall_origin = 0.0
        self._data = DataPlane(config, self.emit, self.act, self._resubscribe, self._watch)
        self._public_handlers = self._data.handlers(private=False)
        self._private_handlers = self._data.handlers(private=True)
        self._latency = LatencyRecorder()  # shared by every link
        self._rate = EventRate()
        self._counts: dict[type, int] = {}  # events emitted, by class (tallied by `_tally`)
        self._tallied = 0  # how many of `_events` are in `_counts` and `_rate` already
        # The data plane's deadline as `poll()` computed it, while nothing has happened since (anything that
        # may set a timer passes `_after`, which forgets it): `_advance` then skips the plane's seven timer
        # queues when nothing is due. That halves the per-read timer work (docs/performance.md).
        self._plane_due: float | object | None = _UNKNOWN
        self._monitor = HealthMonitor(config.health, self._latency)
        self._wanted_seen = -1
        self._live: set[Link] = set()  # links whose LinkUp the data plane has seen and no LinkDown since
        for topic in config.topics:
            self._user.setdefault(self._route(topic, None), set()).add(topic)

    # ---------------------------------------------------------------------------------- transport inputs

    def start(self, now: float, wall_ms: int) -> None:
        """Begin: ask to dial every configured public category, then the private link (with credentials).

        Args:
            now: monotonic seconds; every later input's `now` is on the same clock.
            wall_ms: Unix time in ms at `now` (auth `expires` and REST timestamps are derived from it).
        """
        if self._started:
            raise LocalProtocolError("start() was already called; create a new HybridCore to start over")
        self._started = True
        self._now = now
        self._wall_origin = wall_ms - now * 1000.0
        self._monitor = HealthMonitor(self._config.health, self._latency, now)
        self._data.start(now, wall_ms, self._clock_sample)
        if self._config.mode.streams:
            self._open_links()
        self._after(now, force=True)

    def connected(self, link: Link, now: float) -> None:
        """The transport of `link` is up (TCP, and TLS for wss://): the core begins the WebSocket upgrade."""
        conn = self._link(link)
        conn.check(Input.CONNECTED)
        now = self._advance(now)
        self._take(link, conn.connected(now), now)
        self._after(now)

    def receive(self, link: Link, data: bytes, now: float) -> None:
        """Bytes read from `link`'s socket; `b""` is end of stream. Never raises on what the remote sent."""
        conn = self._link(link)
        conn.check(Input.BYTES)
        now = self._advance(now)
        self._take(link, conn.receive(bytes(data), now), now)
        self._after(now)

    def lost(self, link: Link, now: float, reason: str) -> None:
        """The transport of `link` failed or closed (or the dial failed); the core redials with backoff."""
        conn = self._link(link)
        conn.check(Input.LOST)
        now = self._advance(now)
        self._take(link, conn.lost(now, reason), now)
        self._after(now)

    def tick(self, now: float) -> None:
        """Time passed with no input: run the timers that are due (call it at `poll().deadline`)."""
        self._require_started("tick")
        now = self._advance(now)
        self._after(now)

    def clock(self, now: float, wall_ms: int) -> None:
        """The wall clock moved (a suspend, an NTP step): Unix time in ms is `wall_ms` at `now`.

        The core derives wall time from `start()`'s `wall_ms` plus the monotonic `now`, which drifts from the
        real clock after a step; from this call on, auth `expires` and REST timestamps follow `wall_ms`.
        Adapters call it when they see the system clock step (see `bybit_hybrid`); anyone who knows the
        exchange's time (a REST answer's `time`) may feed that instead.
        """
        self._require_started("clock")
        now = self._advance(now)
        self._wall_origin = wall_ms - now * 1000.0
        self._after(now)

    def rest_answer(self, request: RestRequest, status: int, body: bytes, now: float) -> None:
        """The answer to a `RestCall` action (`FetchPositions`, `FetchTickers`, `FetchTime`): the HTTP status
        and body, or `status=0`, `body=b""` when the transport failed or timed out. Never raises on what the
        server answered."""
        self._require_started("rest_answer")
        now = self._advance(now)
        self._data.rest_answer(request, status, body, now, self.wall_ms(now))
        self._after(now)

    def positions_snapshot(self, request: RestRequest, status: int, body: bytes, now: float) -> None:
        """The answer to a `FetchPositions` action: the same as `rest_answer` (kept for existing callers)."""
        self.rest_answer(request, status, body, now)

    # ------------------------------------------------------------------------------------------ rollout

    @property
    def mode(self) -> Mode:
        """The rollout mode now (`Config.mode`, then whatever `set_mode` chose)."""
        return self._data.mode

    def set_mode(self, mode: Mode | str, share: float | None = None) -> None:
        """Switch the rollout mode at run time (docs/operations.md, "Rolling out"): one call, no position
        lost. The new driver takes over once it is ready (REST after a fresh poll, the stream once its
        book is current); until then the old one keeps driving. A `ModeChanged` event says so.

        Args:
            mode: "rest", "canary", "parallel", "cutover" or "production".
            share: in cutover, the share of symbols the stream drives (default: `Rollout.share`).

        Switching to `rest` at run time leaves the WebSocket links up (monitored, like canary), so going
        forward again is immediate; a core started in `rest` opens them when a streaming mode is chosen.
        """
        self._require_started("set_mode")
        try:
            chosen = Mode(mode)
        except ValueError:
            raise LocalProtocolError(
                f"unknown mode {mode!r}: use one of {', '.join(m.value for m in Mode)}"
            ) from None
        share = self._config.rollout.share if share is None else share
        if not 0.0 <= share <= 1.0:
            raise LocalProtocolError(f"share is a fraction of symbols in [0, 1], got {share!r}")
        if chosen.streams and not self._links:
            self._open_links()
        self._data.set_mode(chosen, share, self._now, self.wall_ms(self._now))
        self._after(self._now, force=True)

    def resume(self) -> bool:
        """End an automatic rollback by hand: the stream drives again once its book is current. Returns
        False when no rollback is in force."""
        self._require_started("resume")
        resumed = self._data.resume(self._now, self.wall_ms(self._now))
        self._after(self._now)
        return resumed

    # ------------------------------------------------------------------------------------------ commands

    def track(self, symbol: str, category: str | None = None) -> None:
        """Keep `symbol`'s ticker subscribed (and its mark live) without a position. Reference counted."""
        self._require_started("track")
        self._data.track(self._category(category, f"track({symbol!r})"), symbol)
        self._after(self._now)

    def untrack(self, symbol: str, category: str | None = None) -> None:
        """Drop one `track`; the ticker is released after the grace period unless still needed."""
        self._require_started("untrack")
        self._data.untrack(self._category(category, f"untrack({symbol!r})"), symbol)
        self._after(self._now)

    def subscribe(self, topic: str, category: str | None = None) -> None:
        """Subscribe any public or private topic; a topic that failed before is tried again.

        Args:
            topic: e.g. "orderbook.50.BTCUSDT", "publicTrade.ETHUSDT", "order", "execution.linear".
            category: the public link ("linear", "inverse", "spot", "option"); needed unless exactly one
                category is configured. Private topics take none.
        """
        self._require_started("subscribe")
        link = self._route(topic, category)
        self._user.setdefault(link, set()).add(topic)
        if link in self._links:
            self._links[link].subs.retry(topic)
        self._after(self._now, force=True)

    def unsubscribe(self, topic: str, category: str | None = None) -> None:
        """Stop a user subscription (the topic stays if the data plane or the config still wants it)."""
        self._require_started("unsubscribe")
        link = self._route(topic, category)
        self._user.get(link, set()).discard(topic)
        self._after(self._now, force=True)

    def poll(self) -> Output:
        """Everything queued since the last poll, and when to call `tick()` next."""
        actions, self._actions = tuple(self._actions), []
        events, self._events = tuple(self._events), []
        self._tally(events)
        self._tallied = 0
        deadline = self._plane_due = self._data.deadline()
        when = self._monitor.deadline()
        if when is not None and (deadline is None or when < deadline):
            deadline = when
        for conn in self._links.values():  # a plain loop: poll runs after every read (docs/performance.md)
            when = conn.deadline()
            if when is not None and (deadline is None or when < deadline):
                deadline = when
        return Output(actions=actions, events=events, deadline=deadline)

    # --------------------------------------------------------------------------------------------- state

    def positions(self) -> dict[PositionKey, Position]:
        """The open positions as the exchange last stated them."""
        return self._data.positions()

    def ticker(self, symbol: str, category: str | None = None) -> TickerData | None:
        """The merged ticker of `symbol` (snapshot + deltas), or None before its first message."""
        return self._data.ticker(symbol, category)

    def orderbook(
        self, category: str, symbol: str, depth: int | None = None
    ) -> tuple[tuple[Level, ...], tuple[Level, ...]] | None:
        """The order book of `symbol` as (bids, asks), best first, or None when not subscribed."""
        return self._data.orderbook(category, symbol, depth)

    def status(self) -> dict[Link, LinkStatus]:
        """Per-link health: state, connection, subscriptions, reconnects, message age, pong round trip."""
        return {link: self._status(conn) for link, conn in self._links.items()}

    def health(self) -> Health:
        """The verdict of `Config.health`'s rules now: ok, warning or critical, with every reason and since
        when. Every change is also a `HealthChanged` event."""
        self._require_started("health")
        self._check_health(self._now)
        return self._monitor.health

    def metrics(self) -> Metrics:
        """Counters, rates, latency percentiles and gauges, as of the last input (see `Metrics`)."""
        self._require_started("metrics")
        window = self._config.health.failed_subscriptions_window
        self._tally(self._events)
        self._tallied = len(self._events)
        snapshot = metrics(
            self._now, self._views(), self._counts, self._rate, self._latency, self.positions(), window
        )
        return msgspec.structs.replace(
            snapshot, divergence=self._data.divergence(), rollout=self._data.rollout_status(self._now)
        )

    # --------------------------------------------------------------- what links and the data plane produce

    def _take(self, link: Link, produced: Iterable[Produced], now: float) -> None:
        """Apply what a link produced, in its order: messages to the data plane, events out, actions out.

        A message of a family the data plane handles, on the kind of link that may carry it (nearly every
        item), goes straight to its handler: one dict lookup and one call, not three layers of dispatch.
        """
        data = self._data
        handlers = self._private_handlers if link is Link.PRIVATE else self._public_handlers
        data.at(now)
        monitor = self._monitor
        for item in produced:
            handler = handlers.get(item.__class__)
            if handler is not None:
                monitor.last_data_at = now
                try:
                    handler(link, item, now)
                except Exception as exc:  # the remote's data must never raise out of receive()
                    self._not_applied(link, item, now, exc)  # type: ignore[arg-type]
                # Reconcile per message, not per read: a subscribe the message caused must go out before
                # the next message is looked at, or how the bytes were chunked would change the outcome.
                if data.wanted_version != self._wanted_seen:
                    self._after(now)
            elif not isinstance(item, _NOT_MESSAGES):  # another topic message: the checked way
                self._on_message(link, item, now)
            elif isinstance(item, Event):
                self._link_event(link, item, now)
            else:
                self._actions.append(item)

    def _link_event(self, link: Link, event: Event, now: float) -> None:
        """Emit a link's event; the three that change what the data plane knows are also told to it."""
        self.emit(event)
        if isinstance(event, Subscribed):
            self._data.on_subscribed(link, event.topics, now)
        elif isinstance(event, LinkUp):
            self._live.add(link)
            self._data.on_link_up(link, now, self.wall_ms(now))
        elif isinstance(event, LinkDown) and link in self._live:
            self._live.discard(link)
            self._data.on_link_down(link, now)

    def emit(self, event: Event) -> None:
        self._events.append(event)
        if type(event) in _VERDICT_EVENTS:
            self._monitor.saw(event)

    def _tally(self, events: list[Event] | tuple[Event, ...]) -> None:
        """Count `events[self._tallied:]` by class and into the rate: once per `poll()` (or `metrics()`),
        in C-level passes, instead of three dict and ring updates per event in `emit`. The same counts:
        events come in the order of their `at`, so grouping by second in first-seen order changes nothing."""
        batch = events[self._tallied :] if self._tallied else events
        if not batch:
            return
        counts = self._counts
        add = self._rate.add
        if len(batch) < _SMALL_BATCH:  # a read of one message or a few: two Counters would cost more
            for event in batch:
                kind = event.__class__
                counts[kind] = counts.get(kind, 0) + 1
                add(event.at)
            return
        for kind, n in Counter(map(type, batch)).items():
            counts[kind] = counts.get(kind, 0) + n
        for second, n in Counter(map(int, map(_AT, batch))).items():
            add(second, n)

    def _watch(self, event: Event) -> None:
        """The stream pipeline's own position events, delivered or not: what the health rules watch."""
        self._monitor.saw(event)

    def act(self, action: Action) -> None:
        self._actions.append(action)

    def next_req_id(self) -> str:
        self._req_ids += 1
        return str(self._req_ids)

    def wall_ms(self, now: float) -> int:
        return round(self._wall_origin + now * 1000.0)

    def _on_message(self, link: Link, msg: TopicMessage, now: float) -> None:
        self._monitor.last_data_at = now
        kind = type(msg)
        if kind in (PRIVATE_MESSAGES if link is not Link.PRIVATE else PUBLIC_MESSAGES):
            # a forged position must not open tickers or positions: reported and dropped, never applied
            where = "public" if link is not Link.PRIVATE else "private"
            self.emit(ProtocolProblem(link=link, at=now, detail=f"{msg.topic}: not a {where} topic; ignored"))
            return
        try:
            self._data.on_message(link, msg, now)
        except Exception as exc:  # the remote's data must never raise out of receive() (ARCHITECTURE)
            self._not_applied(link, msg, now, exc)
        # Reconcile per message, not per read: a subscribe the message caused must go out before the next
        # message is looked at, or how the bytes were chunked would change what the core did.
        if self._data.wanted_version != self._wanted_seen:
            self._after(now)

    def _not_applied(self, link: Link, msg: TopicMessage, now: float, exc: Exception) -> None:
        detail = f"{msg.topic}: the data plane could not apply it: {type(exc).__name__}: {exc}"
        self.emit(ProtocolProblem(link=link, at=now, detail=detail[:300]))

    # ----------------------------------------------------------------------------------------- internals

    def _check_health(self, now: float) -> None:
        self._plane_due = _UNKNOWN  # a verdict may start or end a rollback (a timer of the data plane)
        changed = self._monitor.evaluate(now, self._views())
        if changed is not None:
            where = Link.PRIVATE if Link.PRIVATE in self._links else next(iter(self._links), Link.LINEAR)
            self.emit(HealthChanged(link=where, at=now, health=changed))
            critical = tuple(r.detail for r in changed.reasons if r.level == "critical")
            self._data.health(bool(critical), critical, now, self.wall_ms(now))

    def _clock_sample(self, server_ms: int, wall_ms: int, rtt: float) -> None:
        """The exchange's time from `GET /v5/market/time`: one clock-offset sample (latency, metrics)."""
        self._latency.clock_sample(server_ms, wall_ms, rtt)

    def _open_links(self) -> None:
        for category in self._config.categories:
            self._ensure(Link(category))
        if self._config.credentials is not None:
            self._ensure(Link.PRIVATE)

    def _views(self) -> list[LinkView]:
        return [
            LinkView(link, c.state.name, c.counters, c.auth_refusals, frozenset(c.subs.confirmed))
            for link, c in self._links.items()
        ]

    def _resubscribe(self, link: Link, topic: str, reason: str) -> None:
        """The data plane lost track of `topic` on `link` (a reset, a broken book): a fresh snapshot."""
        conn = self._links.get(link)
        produced = None if conn is None else conn.resubscribe(topic, self._now, reason)
        if produced is not None:
            self._take(link, produced, self._now)
        else:
            # Not confirmed on a LIVE link (its subscribe is still in flight, or the link is going down):
            # the snapshot that subscription brings is awaited; say so, since no TopicReset will.
            detail = f"{topic}: {reason}; awaiting the snapshot of its pending subscription"
            self.emit(ProtocolProblem(link=link, at=self._now, detail=detail[:300]))

    def _require_started(self, what: str) -> None:
        if not self._started:
            raise LocalProtocolError(f"{what} before start(): call start(now, wall_ms) first")

    def _link(self, link: Link) -> LinkConnection:
        conn = self._links.get(link)  # a Link member (every adapter's case): no conversion, no checks
        if conn is not None:
            return conn
        self._require_started("a transport input")
        conn = self._links.get(Link(link))
        if conn is None:
            raise LocalProtocolError(
                f"no {link} link: the core never asked to dial it (see the Dial actions)"
            )
        return conn

    def _advance(self, now: float) -> float:
        """Clamp the clock (event times never go back) and run every timer that is due."""
        now = max(now, self._now)
        self._now = now
        for conn in list(self._links.values()):
            when = conn.deadline()  # the common case, nothing due, costs one min() (docs/performance.md)
            if when is not None and when <= now:
                self._take(conn.link, conn.run_timers(now), now)
        due, self._plane_due = self._plane_due, _UNKNOWN
        if due is _UNKNOWN or (due is not None and due <= now):  # type: ignore[operator]
            self._data.tick(now, self.wall_ms(now))
        else:
            self._data.at(now)  # nothing due, but what comes next (an untrack's grace) starts from `now`
        return now

    def _after(self, now: float, force: bool = False) -> None:
        """Re-read the data plane's wanted topics when they changed and reconcile every link."""
        self._plane_due = _UNKNOWN  # whatever ran before this may have set a timer
        due = self._monitor.deadline()
        if self._monitor.dirty or (due is not None and due <= now):
            self._check_health(now)
        version = self._data.wanted_version
        if not force and version == self._wanted_seen:
            return
        if not self._links:
            return  # mode rest: no WebSocket (set_mode opens the links of a streaming mode)
        self._wanted_seen = version
        wanted = self._data.wanted_topics()
        placed: dict[Link, set[str]] = {}
        needed: set[str] = set()
        for base in dict.fromkeys((*wanted, *self._user)):
            if base is Link.PRIVATE:
                continue
            topics = set(self._user.get(base, ())) | set(wanted.get(base, ()))
            needed.update(wanted.get(base, ()))
            for link, names in self._place(base.category, topics).items():
                placed[link] = names
                if names:
                    self._ensure(link)
        for link, conn in list(self._links.items()):
            if link is Link.PRIVATE:
                desired = set(self._user.get(link, ())) | set(self._config.private_topics)
                conn.subs.set_desired(desired)
            else:
                desired = placed.get(link, set())
                conn.subs.set_desired(desired, desired & needed)
            self._take(link, conn.reconcile(now), now)

    def _place(self, category: str, topics: set[str]) -> dict[Link, set[str]]:
        """Spread `category`'s desired topics over its links: each stays where it was placed; new ones go
        to the first link with room under Bybit's per-connection limits (BYBIT_V5.md section 4)."""
        links = [Link.of(category, shard) for shard in range(1, MAX_SHARDS + 1)]
        out: dict[Link, set[str]] = {link: set() for link in links}
        for topic, link in list(self._placed.items()):
            if link.category == category:
                if topic in topics:
                    out[link].add(topic)
                else:
                    del self._placed[topic]
        chars = {link: sum(map(len, names)) for link, names in out.items()}
        for topic in sorted(topics - self._placed.keys()):
            home = next(
                (link for link in links if self._fits(link, out[link], chars[link], topic)), links[-1]
            )
            # Past the last shard the topic is placed anyway: its link refuses it locally and says why.
            out[home].add(topic)
            chars[home] += len(topic)
            self._placed[topic] = home
        return out

    @staticmethod
    def _fits(link: Link, names: set[str], chars: int, topic: str) -> bool:
        if chars + len(topic) > PUBLIC_MAX_ARG_CHARS:
            return False
        return link.category != "option" or len(names) < OPTION_MAX_ARGS

    def _ensure(self, link: Link) -> LinkConnection:
        """The link's connection, created and dialed on first need."""
        conn = self._links.get(link)
        if conn is None:
            url = self._urls.url(link, self._config.timings.max_active_time if link is Link.PRIVATE else None)
            conn = LinkConnection(
                link,
                url,
                self._config.timings,
                self._config.credentials,
                self._budget,
                self._rng,
                self._latency,
                next_req_id=self.next_req_id,
                wall_ms=self.wall_ms,
            )
            self._links[link] = conn
            self._take(link, conn.start(self._now), self._now)
        return conn

    def _category(self, category: str | None, what: str) -> str:
        if category is None:
            if len(self._config.categories) == 1:
                return self._config.categories[0]
            raise LocalProtocolError(
                f"{what}: pass category= (one of {', '.join(CATEGORIES)}): "
                f"{len(self._config.categories)} categories are configured"
            )
        if category not in CATEGORIES:
            raise LocalProtocolError(
                f"{what}: unknown category {category!r}: use one of {', '.join(CATEGORIES)}"
            )
        return category

    def _route(self, topic: str, category: str | None) -> Link:
        if not isinstance(topic, str) or not topic or topic != topic.strip() or "," in topic:
            raise LocalProtocolError(f"not a topic name: {topic!r} (e.g. 'tickers.BTCUSDT', 'position')")
        if private_family(topic) is not None:
            if self._config.credentials is None:
                raise LocalProtocolError(f"{topic!r} is a private topic: it needs Config(credentials=...)")
            if category is not None:
                raise LocalProtocolError(
                    f"{topic!r} is a private topic and takes no category= (use e.g. '{topic}.{category}')"
                )
            return Link.PRIVATE
        return Link(self._category(category, f"subscribe({topic!r})"))

    def _status(self, conn: LinkConnection) -> LinkStatus:
        c = conn.counters
        state = conn.state.name
        return LinkStatus(
            link=conn.link,
            url=conn.url,
            state=state,
            connected=state in ("AUTHENTICATING", "LIVE"),
            authenticated=conn.link is Link.PRIVATE and state == "LIVE",
            subscriptions=tuple(sorted(conn.subs.confirmed)),
            pending=tuple(sorted(conn.subs.in_flight("subscribe"))),
            failed=tuple(
                sorted((t, why) for t, why in conn.subs.failed.items() if t not in conn.subs.retry_at)
            ),
            retrying=tuple(sorted((t, max(0.0, when - self._now)) for t, when in conn.subs.retry_at.items())),
            reconnects=c.reconnects,
            dials=c.dials,
            downs=c.downs,
            messages=c.messages,
            problems=c.problems,
            last_message_age=c.message_age(self._now),
            last_pong_rtt=c.last_pong_rtt,
            live_for=None if c.live_since is None else self._now - c.live_since,
        )
