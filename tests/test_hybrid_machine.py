"""A hypothesis state machine over the join: interleavings of position pushes, ticker messages, REST snapshot
answers (served at one moment, delivered later), reconnects, pins and clock ticks.

The model plays the exchange (the truth: open positions, seq per symbol, mark per symbol) and the core (it
subscribes `wanted_topics()` and sends each new subscription its snapshot, the way Bybit does). It checks:

* always: every event's `at` is the current time; per position key the emitted seq never decreases (except
  across a `TopicReset(topic="position")`); no `PositionUpdate` for a key between its `PositionClosed` and its
  next `PositionOpened`; after `tick` the deadline is in the future;
* never stuck: a ticker poisoned by one delta whose `cs` is far ahead gets a resubscribe (answered with a
  snapshot) by its `out_of_order_reset`-th genuine delta; a position key poisoned by a push whose seq is far
  ahead is reset (`TopicReset`, REST snapshot) by its `out_of_order_reset`-th genuine push; a resubscribe
  that is lost (no snapshot comes) is asked again while deltas keep arriving;
* once the streams settle (every link up, every snapshot request answered, grace periods over): the positions
  equal the truth; the wanted ticker topics are the symbols with an open position plus the pins; every open
  position's last `PositionUpdate` carries the latest mark sent for its symbol;
* at the end: the same inputs replayed into a fresh DataPlane give the same events and actions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._events import (
    FetchPositions,
    Position,
    PositionClosed,
    PositionKey,
    PositionOpened,
    PositionUpdate,
    RestRequest,
    TopicReset,
)
from bybit_hybrid_core._plane.plane import DataPlane
from test_hybrid_support import (
    WALL0,
    Plane,
    make_config,
    position_message,
    position_row,
    rest_body,
    rest_row,
    ticker_delta,
    ticker_snapshot,
)

D = Decimal
SYMBOLS = {("linear", "BTCUSDT"): (0,), ("linear", "ETHUSDT"): (1, 2), ("inverse", "BTCUSD"): (0,)}
KEYS: list[PositionKey] = [(c, s, i) for (c, s), idxs in SYMBOLS.items() for i in idxs]
TRACKABLE = [*SYMBOLS, ("linear", "SOLUSDT")]  # SOLUSDT: pinned only, never a position
PUBLIC = (Link.LINEAR, Link.INVERSE)
PAGE = 2  # rows per REST page, so that pagination is exercised
Op = Callable[[DataPlane], None]


class JoinMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[Op] = []
        self.now = 0.0
        self.ts = WALL0
        self.truth: dict[PositionKey, Position] = {}
        self.seq = dict.fromkeys(SYMBOLS, 100)
        self.mark = {sym: D(1000 + 100 * n) for n, sym in enumerate(TRACKABLE)}
        self.cs = dict.fromkeys(TRACKABLE, 1)
        self.up = {Link.PRIVATE: False, Link.LINEAR: True, Link.INVERSE: True}
        self.subscribed: dict[Link, set[str]] = {link: set() for link in PUBLIC}
        self.pending: list[RestRequest] = []
        self.served: list[tuple[RestRequest, int, bytes]] = []
        self.delivered: list[dict[str, Any]] = []  # rows that reached the DataPlane
        self.sent_deltas: dict[tuple[str, str], list[Any]] = {sym: [] for sym in TRACKABLE}
        self.pins: Counter[tuple[str, str]] = Counter()
        self.emitted_seq: dict[PositionKey, int] = {}
        self.open_by_events: set[PositionKey] = set()
        self.last_update: dict[PositionKey, PositionUpdate] = {}
        self.seen = 0
        self.actions: list[Any] = []
        self.poisoned: dict[tuple[str, str], int] = {}  # ticker -> genuine deltas sent since its poisoning
        self.poisoned_asks: dict[tuple[str, str], int] = {}  # ticker -> resubscribes asked before it
        self.poisoned_keys: dict[PositionKey, int] = {}  # position key -> genuine pushes since its poisoning
        self.lose_resubscribe = False  # the next resubscribe brings no snapshot
        self.answered = 0  # resubscribe requests handled so far

    # ---------------------------------------------------------------------------------------- plumbing

    @initialize(interval=st.sampled_from([0.0, 0.0, 0.7]))
    def start(self, interval: float) -> None:
        self.config = make_config(
            mark_min_interval=interval, ticker_release_grace=3.0, snapshot_backoff_cap=4.0
        )
        self.plane = Plane(self.config)
        self._private_up()

    def _do(self, op: Op) -> None:
        self.log.append(op)
        op(self.plane.dp)
        self._collect()
        self._sync_subscriptions()
        self._answer_resubscribes()

    def _answer_resubscribes(self) -> None:
        """What the core does with the plane's resubscribe requests: a fresh snapshot (unless one is lost)."""
        while self.answered < len(self.plane.resubscribes):
            link, topic, _ = self.plane.resubscribes[self.answered]
            self.answered += 1
            if self.lose_resubscribe:
                self.lose_resubscribe = False
            elif self.up[link] and topic in self.subscribed[link]:
                self._subscribed_snapshot(link, topic)

    def _collect(self) -> None:
        for action in self.plane.actions:
            assert isinstance(action, FetchPositions)
            self.pending.append(action.request)
            self.actions.append(action)
        self.plane.actions.clear()
        for event in self.plane.events[self.seen :]:
            self._check_event(event)
        self.seen = len(self.plane.events)

    def _check_event(self, event: Any) -> None:
        assert event.at == self.now
        if isinstance(event, TopicReset) and event.topic == "position":
            assert event.remedy == "snapshot"
            self.emitted_seq.clear()  # the held seq was forgotten: the next one may be lower
        if isinstance(event, PositionOpened | PositionClosed | PositionUpdate):
            key = event.position.key if not isinstance(event, PositionUpdate) else event.key
            seq = event.position.seq if isinstance(event, PositionOpened) else event.seq
            assert seq >= self.emitted_seq.get(key, -(2**63)), (key, seq, self.emitted_seq.get(key))
            self.emitted_seq[key] = seq
            if isinstance(event, PositionOpened):
                assert key not in self.open_by_events
                self.open_by_events.add(key)
            elif isinstance(event, PositionClosed):
                assert key in self.open_by_events
                self.open_by_events.discard(key)
                self.last_update.pop(key, None)
            else:
                assert key in self.open_by_events, f"PositionUpdate for {key} while closed"
                self.last_update[key] = event

    def _sync_subscriptions(self) -> None:
        """What the core does with `wanted_topics()`: subscribe new topics, each answered with a snapshot."""
        wanted = self.plane.dp.wanted_topics()
        for link in PUBLIC:
            new = wanted[link] - self.subscribed[link]
            for topic in self.subscribed[link] - wanted[link]:
                self.poisoned.pop((link.value, topic.removeprefix("tickers.")), None)  # unsubscribed: gone
            self.subscribed[link] = set(wanted[link])
            if self.up[link]:
                for topic in sorted(new):
                    self._subscribed_snapshot(link, topic)

    def _subscribed_snapshot(self, link: Link, topic: str) -> None:
        symbol = topic.removeprefix("tickers.")
        sym = (link.value, symbol)
        self.ts += 1
        self.cs[sym] += 1
        msg = ticker_snapshot(symbol, str(self.mark[sym]), ts=self.ts, cs=self.cs[sym])
        self.sent_deltas[sym] = []
        self.poisoned.pop(sym, None)
        now = self.now

        def subscribed(dp: DataPlane) -> None:
            dp.on_subscribed(link, (topic,), now)
            dp.on_message(link, msg, now)

        self._do(subscribed)

    def _push_rows(self, *rows: dict[str, Any]) -> None:
        if not self.up[Link.PRIVATE]:
            return  # pushed into a dead link: lost, never to be delivered
        self.delivered.extend(rows)
        msg = position_message(*rows, creation=WALL0 + int(self.now * 1000))
        now = self.now
        resets = len(self.plane.of(TopicReset))
        self._do(lambda dp: dp.on_message(Link.PRIVATE, msg, now))
        reset = len(self.plane.of(TopicReset)) > resets
        for key in {_key(row) for row in rows} & set(self.poisoned_keys):
            self.poisoned_keys[key] += 1
            if reset:
                del self.poisoned_keys[key]  # (one key is poisoned at a time: see `poison_position`)
            else:  # never stuck: by the out_of_order_reset-th genuine push the key is reset
                assert self.poisoned_keys[key] < self.config.timings.out_of_order_reset, key

    def _row(self, key: PositionKey) -> dict[str, Any]:
        category, symbol, idx = key
        seq = self.seq[(category, symbol)]
        position = self.truth.get(key)
        mark = str(self.mark[(category, symbol)])
        if position is None:
            return position_row(symbol, "", "0", "0", seq, idx=idx, category=category, mark=mark)
        row = position_row(
            symbol,
            position.side,
            str(position.size),
            str(position.avg_price),
            position.seq,
            idx=idx,
            category=category,
            mark=mark,
            updated=position.updated_ms,
        )
        row["takeProfit"] = str(position.take_profit or 0)
        return row

    def _private_up(self) -> None:
        self.up[Link.PRIVATE] = True
        now, wall = self.now, WALL0 + int(self.now * 1000)
        self._do(lambda dp: dp.on_link_up(Link.PRIVATE, now, wall))
        self._do(lambda dp: dp.on_subscribed(Link.PRIVATE, ("position", "order"), now))

    # ------------------------------------------------------------------------------------- exchange side

    @rule(key=st.sampled_from(KEYS), size=st.sampled_from(["0", "1", "2.5"]), price=st.integers(90, 110))
    def trade(self, key: PositionKey, size: str, price: int) -> None:
        category, symbol, idx = key
        sym = (category, symbol)
        self.seq[sym] += 1
        if size == "0":
            self.truth.pop(key, None)
        else:
            side = {1: "Buy", 2: "Sell"}.get(idx, "Buy" if price % 2 else "Sell")
            self.truth[key] = Position(
                category=category,
                symbol=symbol,
                position_idx=idx,
                side=side,
                size=D(size),
                avg_price=D(price) * 10,
                leverage=D(10),
                seq=self.seq[sym],
                updated_ms=WALL0 + int(self.now * 1000),
            )
        row = self._row(key)
        self._push_rows(row)

    @rule(
        trades=st.lists(
            st.tuples(st.sampled_from(KEYS), st.sampled_from(["0", "1", "2.5"]), st.integers(90, 110)),
            max_size=3,
        ),
        reconnect=st.booleans(),
    )
    def private_outage(self, trades: list[tuple[PositionKey, str, int]], reconnect: bool) -> None:
        """The private link drops, trades happen unseen (only a snapshot can tell), it maybe comes back."""
        self.link_down(Link.PRIVATE)
        for key, size, price in trades:
            self.trade(key, size, price)
        if reconnect:
            self.link_up(Link.PRIVATE)

    @rule(key=st.sampled_from(KEYS), tp=st.integers(1, 3))
    def settings_change(self, key: PositionKey, tp: int) -> None:
        """TP/SL set: Bybit reuses the last fill's seq."""
        position = self.truth.get(key)
        if position is None:
            return
        self.truth[key] = Position(**{**_fields(position), "take_profit": D(tp) * 1000})
        row = self._row(key)
        self._push_rows(row)

    @rule(sym=st.sampled_from(list(SYMBOLS)))
    def order_created(self, sym: tuple[str, str]) -> None:
        """An order was created: every leg of the symbol is pushed again, unchanged, in one message."""
        self._push_rows(*(self._row((*sym, idx)) for idx in SYMBOLS[sym]))

    @rule(data=st.data())
    def replay_old_push(self, data: st.DataObject) -> None:
        """A push arrives again after a newer one for its key got through: it must change nothing."""
        newest: dict[PositionKey, int] = {}
        genuine = [row for row in self.delivered if row["seq"] < 10**9]  # not `poison_position`'s
        for row in genuine:
            newest[_key(row)] = max(newest.get(_key(row), row["seq"]), row["seq"])
        old = [row for row in genuine if row["seq"] < newest[_key(row)]]
        if old:
            self._push_rows(data.draw(st.sampled_from(old)))

    @rule(sym=st.sampled_from(TRACKABLE), step=st.integers(-20, 20), with_mark=st.booleans())
    def ticker(self, sym: tuple[str, str], step: int, with_mark: bool) -> None:
        link, topic = Link(sym[0]), f"tickers.{sym[1]}"
        if with_mark:
            self.mark[sym] = max(D(1), self.mark[sym] + D(step) / 10)
        if not (self.up[link] and topic in self.subscribed[link]):
            return
        self.ts += 1
        self.cs[sym] += 1
        fields = {"markPrice": str(self.mark[sym])} if with_mark else {"indexPrice": str(1000 + step)}
        msg = ticker_delta(sym[1], ts=self.ts, cs=self.cs[sym], **fields)
        self.sent_deltas[sym].append(msg)
        now = self.now
        if sym in self.poisoned:
            self.poisoned[sym] += 1
        self._do(lambda dp: dp.on_message(link, msg, now))
        # never stuck: by the out_of_order_reset-th genuine delta the plane asked for a snapshot (the model
        # answers it at once, which ends the poisoning, unless it was lost)
        if self.poisoned.get(sym, 0) >= self.config.timings.out_of_order_reset:
            asked = self.plane.resubscribes[self.poisoned_asks[sym] :]
            assert (link, topic) in [(link, topic) for link, topic, _ in asked], sym

    @rule(sym=st.sampled_from(TRACKABLE), lose=st.booleans())
    def poison_ticker(self, sym: tuple[str, str], lose: bool) -> None:
        """The user's bug: one delta whose cs is far ahead of the real ones (it carries the true mark); and
        maybe the resubscribe it leads to brings no snapshot."""
        link, topic = Link(sym[0]), f"tickers.{sym[1]}"
        if not (self.up[link] and topic in self.subscribed[link]) or sym in self.poisoned:
            return
        self.ts += 1
        msg = ticker_delta(sym[1], ts=self.ts, cs=self.cs[sym] + 10**9, markPrice=str(self.mark[sym]))
        self.poisoned[sym] = 0
        self.poisoned_asks[sym] = len(self.plane.resubscribes)
        self.lose_resubscribe = self.lose_resubscribe or lose
        now = self.now
        self._do(lambda dp: dp.on_message(link, msg, now))

    @rule()
    def resubscribe_lost(self) -> None:
        """The next resubscribe request brings no snapshot (a lost subscribe, a silent server)."""
        self.lose_resubscribe = True

    @rule(key=st.sampled_from(KEYS))
    def poison_position(self, key: PositionKey) -> None:
        """One push whose seq is far ahead of the real ones (it states the true position)."""
        if not self.up[Link.PRIVATE] or self.poisoned_keys:
            return
        row = self._row(key)
        row["seq"] += 10**9
        self.delivered.append(row)
        msg = position_message(row, creation=WALL0 + int(self.now * 1000))
        self.poisoned_keys[key] = 0
        now = self.now
        self._do(lambda dp: dp.on_message(Link.PRIVATE, msg, now))

    @rule(sym=st.sampled_from(list(SYMBOLS)), data=st.data())
    def replay_old_ticker(self, sym: tuple[str, str], data: st.DataObject) -> None:
        link = Link(sym[0])
        older = self.sent_deltas[sym][:-1]
        if older and self.up[link]:
            msg = data.draw(st.sampled_from(older))
            now = self.now
            self._do(lambda dp: dp.on_message(link, msg, now))

    # ------------------------------------------------------------------------------------ links and REST

    @rule(link=st.sampled_from([Link.PRIVATE, *PUBLIC]))
    def link_down(self, link: Link) -> None:
        if self.up[link]:
            self.up[link] = False
            now = self.now
            self._do(lambda dp: dp.on_link_down(link, now))

    @rule(link=st.sampled_from([Link.PRIVATE, *PUBLIC]))
    def link_up(self, link: Link) -> None:
        if self.up[link]:
            return
        if link is Link.PRIVATE:
            self._private_up()
            return
        self.up[link] = True
        now, wall = self.now, WALL0
        self._do(lambda dp: dp.on_link_up(link, now, wall))
        for topic in sorted(self.subscribed[link]):  # the core re-subscribes; each answers with a snapshot
            self._subscribed_snapshot(link, topic)

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), fail=st.sampled_from([False, False, False, True]))
    def serve(self, data: st.DataObject, fail: bool) -> None:
        """The exchange answers a request now (from the truth of this moment); it is delivered later."""
        request = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        self.served.append((request, *self._answer(request, fail)))

    @precondition(lambda self: self.pending)
    @rule(
        data=st.data(),
        key=st.sampled_from(KEYS),
        size=st.sampled_from(["0", "1"]),
        price=st.integers(90, 110),
    )
    def trade_while_answering(self, data: st.DataObject, key: PositionKey, size: str, price: int) -> None:
        """The race of issue 3: the snapshot is taken, the stream reports a fill, then the answer arrives."""
        self.serve(data, fail=False)
        self.trade(key, size, price)
        self.deliver(data)

    @precondition(lambda self: self.served)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        request, status, body = self.served.pop(data.draw(st.integers(0, len(self.served) - 1)))
        now, wall = self.now, WALL0 + int(self.now * 1000)
        self._do(lambda dp: dp.rest_answer(request, status, body, now, wall))

    def _answer(self, request: RestRequest, fail: bool) -> tuple[int, bytes]:
        if fail:
            return 503, b"busy"
        # a keyset cursor, as Bybit's look ("<symbol>:<idx>", percent-encoded): positions that close or open
        # before the cursor do not shift the later pages
        query = dict(parse_qsl(urlsplit(request.url).query))
        after = tuple(query["cursor"].split(":")) if "cursor" in query else ("", "")
        keys = [
            key for key in sorted(self.truth) if key[0] == request.category and (key[1], str(key[2])) > after
        ]
        page = keys[:PAGE]
        cursor = f"{page[-1][1]}%3A{page[-1][2]}" if len(keys) > PAGE else ""
        rows = [self._rest_row(key) for key in page]
        return 200, rest_body(request.category, rows, cursor=cursor)

    def _rest_row(self, key: PositionKey) -> dict[str, Any]:
        p = self.truth[key]
        row = rest_row(p.symbol, p.side, str(p.size), str(p.avg_price), p.seq, idx=p.position_idx)
        row.update(
            updatedTime=str(p.updated_ms),
            takeProfit=str(p.take_profit or 0),
            markPrice=str(self.mark[key[:2]]),
        )
        return row

    # ---------------------------------------------------------------------------------------- the user

    @rule(sym=st.sampled_from(TRACKABLE))
    def track(self, sym: tuple[str, str]) -> None:
        self.pins[sym] += 1
        self._do(lambda dp: dp.track(*sym))

    @rule(sym=st.sampled_from(TRACKABLE))
    def untrack(self, sym: tuple[str, str]) -> None:
        if self.pins[sym]:
            self.pins[sym] -= 1
            self._do(lambda dp: dp.untrack(*sym))

    @rule(dt=st.sampled_from([0.05, 0.4, 1.0, 2.5, 6.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        now, wall = self.now, WALL0 + int(self.now * 1000)
        self._do(lambda dp: dp.tick(now, wall))
        deadline = self.plane.dp.deadline()
        assert deadline is None or deadline > self.now

    # --------------------------------------------------------------------------------------- settling

    def _unstick(self) -> None:
        """Settling: what keeps coming on a live stream until every reset has fired (Bybit pushes an
        unchanged position on every order placed, and a ticker delta every 100 ms)."""
        for key in list(self.poisoned_keys):
            while key in self.poisoned_keys:
                self._push_rows(self._row(key))
        for sym in TRACKABLE:
            link, topic = Link(sym[0]), f"tickers.{sym[1]}"
            if topic not in self.subscribed[link]:
                continue
            for _ in range(self.config.timings.out_of_order_reset + 2):
                state = self.plane.dp._market.tickers.get(*sym)
                if sym not in self.poisoned and (state is None or not state.awaiting_snapshot):
                    break
                self.advance(self.config.timings.topic_quiet_after)  # a lost resubscribe is asked again
                self.ticker(sym, 0, True)
            if topic not in self.subscribed[link]:
                continue  # released meanwhile (grace over): a new subscription starts with a snapshot
            state = self.plane.dp._market.tickers.get(*sym)
            assert state is not None and not state.awaiting_snapshot and sym not in self.poisoned, topic

    @rule()
    def settle_and_check(self) -> None:
        for link in (Link.PRIVATE, *PUBLIC):
            self.link_up(link)
        self._unstick()
        for _ in range(50):
            while self.pending or self.served:
                while self.pending:
                    self.served.append((self.pending[0], *self._answer(self.pending.pop(0), fail=False)))
                request, status, body = self.served.pop(0)
                now, wall = self.now, WALL0 + int(self.now * 1000)
                self._do(lambda dp, r=request, s=status, b=body, t=now, w=wall: dp.rest_answer(r, s, b, t, w))
            if self.plane.dp._sync.active:  # a retry is scheduled: let it fire
                self.advance(6.0)
            else:
                break
        self.advance(6.0)  # past the grace period and any conflation interval
        assert self.plane.dp.positions() == self.truth, (self.plane.dp.positions(), self.truth)
        expected = {link: set() for link in PUBLIC}
        for category, symbol in [*(key[:2] for key in self.truth), *(s for s, n in self.pins.items() if n)]:
            expected[Link(category)].add(f"tickers.{symbol}")
        assert {link: set(self.plane.dp.wanted_topics()[link]) for link in PUBLIC} == expected
        assert self.open_by_events == set(self.truth)
        for key in self.truth:
            assert self.last_update[key].mark_price == self.mark[key[:2]], key

    @invariant()
    def book_is_consistent_with_its_events(self) -> None:
        if hasattr(self, "plane"):
            assert set(self.plane.dp.positions()) == self.open_by_events

    @invariant()
    def live_tickers_hold_the_latest_mark(self) -> None:
        """A subscribed ticker on a live link has seen every mark sent: it holds the newest."""
        if not hasattr(self, "plane"):
            return
        for link in PUBLIC:
            if self.up[link]:
                for topic in self.subscribed[link]:
                    symbol = topic.removeprefix("tickers.")
                    state = self.plane.dp._market.tickers.get(link.value, symbol)
                    if (link.value, symbol) in self.poisoned or (
                        state is not None and state.awaiting_snapshot
                    ):
                        continue  # until its resubscribe's snapshot: checked by `ticker` and `_unstick`
                    ticker = self.plane.dp.ticker(symbol, link.value)
                    assert ticker is not None and ticker.mark_price == self.mark[(link.value, symbol)], topic

    def teardown(self) -> None:
        if not hasattr(self, "plane"):
            return
        self.settle_and_check()
        replay = Plane(self.config)
        for op in self.log:
            op(replay.dp)
        assert replay.events == self.plane.events
        assert replay.actions == self.actions


def _key(row: dict[str, Any]) -> PositionKey:
    return (row["category"], row["symbol"], row["positionIdx"])


def _fields(position: Position) -> dict[str, Any]:
    return {name: getattr(position, name) for name in position.__struct_fields__}


JoinMachine.TestCase.settings = settings(JoinMachine.TestCase.settings, stateful_step_count=60)
test_join_machine = JoinMachine.TestCase
