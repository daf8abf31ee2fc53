"""The data plane: everything above the links (TEAM.md "The data plane", ARCHITECTURE.md "The hybrid join").

`HybridCore` owns one `DataPlane` and hands it every decoded topic message, the links' ups and downs, the
answers to `FetchPositions` and the clock. The data plane keeps the market state (`market`, `books`), the
position book (`account`) and the join (`join`), asks for REST snapshots (`sync`) and says which ticker
topics it needs (`topics`); the core subscribes them and bumps nothing itself.

Reconciling a snapshot with the stream (section "The hybrid join"): a row wins over the held position when
its seq is higher, or equal and the stream has not touched that key since the round's request went out; a
held open position the snapshot does not list, and that the stream has not touched since then, is closed.

Never frozen (the "Never frozen" issue, item 3): a position key whose stream pushes keep arriving with a seq
below the held one (`Timings.out_of_order_reset` in a row) holds a poisoned seq, and every genuine push is
being ignored. That is a reset: a `TopicReset(topic="position", remedy="snapshot")`, the held seq of that
key forgotten, the last push taken (the stream's latest word), and a new REST snapshot round started with
the book's generation *after* that push, so the reconciliation rules above apply unchanged to what the
snapshot says. The seq of that key's `PositionUpdate`s goes down once, across the reset. Tickers and books
have their own resets (`market`, `books`): the plane asks the core to resubscribe the topic.

The REST snapshot retries are jittered (`sync`) from the plane's own `Random`, seeded from
`Config.seed` (salted, so it draws nothing from the core's redial jitter): same seed, same events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal
from random import Random
from typing import Any, Literal

from .._codec import (
    PRIVATE_MESSAGES,
    PUBLIC_MESSAGES,
    ExecutionMessage,
    FastExecutionMessage,
    GreeksMessage,
    KlineMessage,
    LiquidationMessage,
    OrderbookMessage,
    OrderMessage,
    PositionMessage,
    PublicTradeMessage,
    TickerData,
    TickerMessage,
    TopicMessage,
    WalletMessage,
)
from .._config import CATEGORIES, Config, Link, Mode
from .._errors import LocalProtocolError
from .._events import (
    Action,
    Event,
    KlineUpdate,
    Level,
    Liquidations,
    Position,
    PositionClosed,
    PositionKey,
    PositionOpened,
    PositionsSynced,
    ProtocolProblem,
    PublicTrades,
    RestRequest,
    TopicData,
    TopicReset,
)
from .._health import DivergenceMetrics, RolloutStatus
from .._timers import earliest
from .account import POSITION_CATEGORIES, Change, OwnMark, PositionBook, RowMessage, row_events, to_position
from .fallback import RestBudget, RestFallback, RestPacer
from .join import Join
from .market import Market
from .market_rest import RestMark
from .rest import categories_requests
from .rollout import DivergenceBook, RestPositions, Router
from .sync import CompletedSnapshot, SnapshotSync
from .topics import TickerInterest

__all__ = ["DataPlane"]

_RNG_SALT = 0x5A_4E_50_53  # the plane's Random is Random(seed ^ salt): its own sequence, not the core's


def _is_position_topic(topic: str) -> bool:
    return topic == "position" or topic.startswith("position.")


class DataPlane:
    """Market state, the position book and the join, driven by the core (sans-IO, deterministic).

    Args:
        config: the core's configuration (credentials sign the REST snapshot; timings set every timer).
        emit: appends an event to the core's output, in order.
        act: appends an action (`FetchPositions`) to the core's output, in order.
        resubscribe: asks the core to resubscribe a topic on a link for a fresh snapshot, with a reason.
        watch: sees the stream's own position events, delivered or not (the core's health rules).
    """

    def __init__(
        self,
        config: Config,
        emit: Callable[[Event], None],
        act: Callable[[Action], None],
        resubscribe: Callable[[Link, str, str], None],
        watch: Callable[[Event], None] | None = None,
    ) -> None:
        self._config = config
        self._emit = emit  # link, problem and health news: always delivered
        self._ids = itertools.count(1).__next__  # REST request ids, unique across every REST consumer
        rng = Random(config.seed ^ _RNG_SALT)
        self._divergence = DivergenceBook(config.rollout.divergence_pct)
        budget = RestBudget(config.rollout.rest_rate)  # every periodic REST request takes a token from it
        # position requests go out paced: a round pays up front, a retry or a next page takes a token
        self._pacer = RestPacer(budget, act)
        paced: Callable[[Action], None] = lambda action: self._pacer.act(action, self._now)  # noqa: E731
        cost = sum(
            len(categories_requests(c, config.settle_coins))
            for c in dict.fromkeys(config.position_categories)
        )
        self._rest = RestPositions(
            config, self._from_rest, paced, rng, self._ids, self._polled_mark, budget, cost, self._pacer
        )
        self._router = Router(
            config,
            emit,
            self._stream_position,
            self._stream_keys,
            self._replay,
            self._stream_current,
            self._rest,
            watch if watch is not None else _drop,
        )
        # market and account data of the stream: delivered in cutover and production, dropped otherwise
        self._emit_data: Callable[[Event], None] = emit if self._router.delivers_stream_data else _drop
        self._stream_out = self._router.from_stream  # the stream's position events pass the router
        self._private_live = False
        self._synced: set[str] = set()  # position categories snapshotted since the private link came up
        self._critical: tuple[bool, tuple[str, ...]] = (False, ())
        # (link, topic, reason): ask the core for a fresh snapshot of `topic` (unsubscribe + subscribe on
        # that link); the core reports it as a `TopicReset(remedy="resubscribe")`.
        self._resubscribe = resubscribe
        self._market = Market(config.timings, resubscribe)
        self._book = PositionBook()
        self._interest = TickerInterest(config.timings.ticker_release_grace)
        self._join = Join(
            config.timings,
            self._book,
            self._market.tickers,
            self._stream_out,
            rest_mark_for=2 * config.rollout.poll_interval,
        )
        self._sync = SnapshotSync(config, emit, paced, rng, ids=self._ids)
        self._fallback = RestFallback(
            config,
            emit,
            act,
            self._ids,
            budget,
            dark=self._join.dark,
            lit=self._lit,
            rest_mark=self._fallback_mark,
            compare=self._compare,
            snapshot=self._snapshot,
            snapshot_active=lambda: self._sync.active,
            clock=self._clock_sample,
            round_cost=cost,
        )
        self._fallback.streaming = config.mode.streams
        queues = (self._interest, self._join, self._sync, self._rest, self._fallback)
        self._queues = tuple(
            q for owner in queues for q in owner.queues()
        )  # every timer queue, for deadline()
        self._fallback.comparing = config.mode in (Mode.CUTOVER, Mode.PRODUCTION)
        self._clock: Callable[[int, int, float], None] = lambda server_ms, wall_ms, rtt: None
        self._now = 0.0
        self._wall_origin = 0.0
        # With `position` among the private topics, the REST snapshot waits for its subscribe ack: a fill
        # between an earlier snapshot and the ack would be in neither and stay unseen until the next resync.
        self._snapshot_after_ack = any(_is_position_topic(t) for t in config.private_topics)
        self._awaiting_position_ack = False
        # the handler of each message class the data plane knows (Any: each takes its own class)
        self._handlers: dict[type, Callable[[Link, Any, float], None]] = {
            TickerMessage: self._on_ticker,
            PositionMessage: self._on_positions,
            OrderbookMessage: self._on_book,
            PublicTradeMessage: self._on_trades,
            KlineMessage: self._on_klines,
            LiquidationMessage: self._on_liquidations,
            OrderMessage: self._on_rows,
            ExecutionMessage: self._on_rows,
            FastExecutionMessage: self._on_rows,
            WalletMessage: self._on_rows,
            GreeksMessage: self._on_rows,
        }

    def handlers(self, private: bool) -> dict[type, Callable[[Link, Any, float], None]]:
        """The handler of each message class a link of that kind may carry (a private class on a public
        link is a forgery: not here, so `on_message` reports it). For the core's per-message dispatch, which
        calls `at(now)` once before handing messages straight to these."""
        forged = PUBLIC_MESSAGES if private else PRIVATE_MESSAGES
        return {kind: handler for kind, handler in self._handlers.items() if kind not in forged}

    def at(self, now: float) -> None:
        """The time of the messages about to be handed to `handlers()`' entries."""
        self._now = now

    # ------------------------------------------------------------------------------------ inputs

    def on_message(self, link: Link, msg: TopicMessage, now: float) -> None:
        """Apply one decoded topic message from `link`."""
        self._now = now
        # one dict lookup on the exact class instead of a `match` that tries the classes in turn: this runs
        # for every message (the codec builds these classes, never subclasses of them)
        handler = self._handlers.get(type(msg))
        if handler is None:
            self._emit_data(TopicData(link=link, at=now, topic=msg.topic, message=msg))
        else:
            handler(link, msg, now)

    def _on_ticker(self, link: Link, msg: TickerMessage, now: float) -> None:
        event, state = self._market.tickers.apply(link, msg, now)
        if event is not None:
            self._emit_data(event)
        if state is not None:
            self._join.mark_changed(link.category, msg.data.symbol, now)

    def _on_book(self, link: Link, msg: OrderbookMessage, now: float) -> None:
        event = self._market.books.apply(link, msg, now)
        if event is not None:
            self._emit_data(event)

    def _on_trades(self, link: Link, msg: PublicTradeMessage, now: float) -> None:
        self._emit_data(
            PublicTrades(link=link, at=now, category=link.category, topic=msg.topic, trades=msg.data)
        )

    def _on_klines(self, link: Link, msg: KlineMessage, now: float) -> None:
        self._emit_data(
            KlineUpdate(link=link, at=now, category=link.category, topic=msg.topic, candles=msg.data)
        )

    def _on_liquidations(self, link: Link, msg: LiquidationMessage, now: float) -> None:
        category = link.category
        self._emit_data(
            Liquidations(link=link, at=now, category=category, topic=msg.topic, liquidations=msg.data)
        )

    def _on_rows(self, link: Link, msg: RowMessage, now: float) -> None:
        for event in row_events(link, msg, now):
            self._emit_data(event)

    def on_link_up(self, link: Link, now: float, wall_ms: int) -> None:
        """The link is live (private: authenticated). The private link starts a REST snapshot round."""
        self._now = now
        if link is Link.PRIVATE:
            self._wall_origin = wall_ms - now * 1000.0
            self._private_live = True
            self._synced.clear()
            self._fallback.private_up(now)
            if self._snapshot_after_ack:
                self._awaiting_position_ack = True
            else:
                self._snapshot(now, wall_ms)

    def on_link_down(self, link: Link, now: float) -> None:
        """The link is gone: its tickers await new snapshots (their marks go stale); its books are dropped."""
        self._now = now
        if link is Link.PRIVATE:
            self._sync.cancel()  # the next link up starts a fresh round
            self._pacer.forget("snapshot")
            self._awaiting_position_ack = False
            self._private_live = False
            self._fallback.private_down(now)
            return
        for symbol in self._market.link_down(link):
            self._join.mark_changed(link.category, symbol, now)

    def on_subscribed(self, link: Link, topics: tuple[str, ...], now: float) -> None:
        """The server confirmed `topics`. A ticker's next snapshot is then taken whatever its cs (the held
        state may come from an earlier subscription); the private `position` topic's ack starts the REST
        snapshot round (see `__init__`)."""
        self._now = now
        if link.is_public:
            for topic in topics:
                if topic.startswith("tickers."):
                    self._market.tickers.subscribed(link, topic.removeprefix("tickers."))
        if self._awaiting_position_ack and link is Link.PRIVATE and any(map(_is_position_topic, topics)):
            self._awaiting_position_ack = False
            self._snapshot(now, round(self._wall_origin + now * 1000.0))

    def rest_answer(self, request: RestRequest, status: int, body: bytes, now: float, wall_ms: int) -> None:
        """The answer to a `RestCall` (`status=0, body=b""` when the transport failed), by its purpose."""
        self._now = now
        if request.purpose == "snapshot":
            done = self._sync.answer(request, status, body, now, wall_ms)
            if done is not None:
                self._reconcile(done, now)
        elif request.purpose == "poll":
            self._rest.answer(request, status, body, now, wall_ms)
        else:
            self._fallback.answer(request, status, body, now, wall_ms)
        self._after_rollout(now, wall_ms)  # a pending hand-over may be ready now: filters follow the mode

    # ------------------------------------------------------------------------------------- rollout

    def start(self, now: float, wall_ms: int, clock: Callable[[int, int, float], None]) -> None:
        """The core started: REST polling if REST drives, the fallback and clock timers."""
        self._now = now
        self._clock = clock
        self._fallback.start(now, self._config.credentials is not None)
        if self._router.needs_rest:
            self._rest.start(now, wall_ms)

    def set_mode(self, mode: Mode, share: float, now: float, wall_ms: int) -> None:
        """Switch the rollout mode: positions are handed over once the new driver is ready (`Router`)."""
        self._now = now
        self._router.set_mode(mode, share, now)
        self._after_rollout(now, wall_ms)

    def health(self, critical: bool, reasons: tuple[str, ...], now: float, wall_ms: int) -> None:
        """The health verdict changed or was re-evaluated: a rollback starts or its healthy time counts."""
        self._critical = (critical, reasons)
        self._router.verdict(critical, reasons, now)
        self._after_rollout(now, wall_ms)

    def resume(self, now: float, wall_ms: int) -> bool:
        """End a rollback by hand (False when none is in force)."""
        resumed = self._router.resume(now)
        self._after_rollout(now, wall_ms)
        return resumed

    @property
    def mode(self) -> Mode:
        return self._router.mode

    def divergence(self) -> DivergenceMetrics:
        return self._divergence.metrics()

    def rollout_status(self, now: float) -> RolloutStatus:
        router = self._router
        return RolloutStatus(
            mode=router.mode.value,
            share=router.share,
            rest_polling=self._rest.running,
            positions_fallback=self._fallback.positions_active,
            marks_fallback=tuple(f"{c}:{s}" for c, s in self._fallback.marks),
            rolled_back_for=None if router.rolled_back_at is None else now - router.rolled_back_at,
            rollback_reasons=router.reasons if router.rolled_back_at is not None else (),
            rest_requests=self._fallback.budget.spent,
            clock_failures=self._fallback.clock_failures,
        )

    def _after_rollout(self, now: float, wall_ms: int) -> None:
        """Start or stop REST polling, the data filter and comparisons for what the router now needs."""
        router = self._router
        if router.needs_rest and not self._rest.running:
            self._rest.start(now, wall_ms)
        router.ready(now)
        if not router.needs_rest and self._rest.running:
            self._rest.stop()
        self._emit_data = self._emit if router.delivers_stream_data else _drop
        self._fallback.comparing = router.mode in (Mode.CUTOVER, Mode.PRODUCTION)
        self._fallback.streaming = router.mode.streams or self._config.mode.streams

    def _from_rest(self, event: Event) -> None:
        self._router.from_rest(event)

    def _stream_position(self, key: PositionKey) -> Position | None:
        return self._book.get(key)

    def _stream_keys(self) -> list[PositionKey]:
        return list(self._book.open_positions())

    def _replay(self, key: PositionKey, now: float) -> None:
        self._join.replay(key, now, "snapshot")

    def _snapshot(self, now: float, wall_ms: int) -> None:
        """Start a snapshot round of the stream's book: sent at once (a fallback round paid for it; a
        link-up or reset round is not periodic); its retries and next pages are paced."""
        self._pacer.paid(lambda: self._sync.start(now, wall_ms, self._book.generation))

    def _stream_current(self) -> bool:
        """The stream's book is current: the private link is up and every position category was
        snapshotted since it came up."""
        return self._private_live and self._synced >= set(self._config.position_categories)

    def _lit(self, now: float) -> list[tuple[str, str]]:
        dark = set(self._join.dark(now, self._config.timings.stale_mark_after))
        return sorted({(k[0], k[1]) for k in self._book.open_positions()} - dark)

    def _fallback_mark(self, mark: RestMark) -> None:
        self._join.rest_mark(mark.category, mark.symbol, mark.mark, mark.ts, mark.at)

    def _polled_mark(self, category: str, symbol: str, mark: Decimal, now: float) -> None:
        if self._router.mode is Mode.PARALLEL:
            self._compare(category, symbol, mark, now)

    def _compare(self, category: str, symbol: str, rest_mark: Decimal, now: float) -> None:
        """Compare a REST mark with the stream's mark of the symbol now, when the stream's is fresh."""
        ticker = self._market.tickers.get(category, symbol)
        after = self._config.timings.stale_mark_after
        if ticker is None or ticker.mark is None or ticker.awaiting_snapshot or now >= ticker.last_at + after:
            return  # no fresh stream mark to compare with (that is the stale-mark rules' business)
        self._emit(self._divergence.compare(ticker.link, category, symbol, ticker.mark, rest_mark, now))

    def _clock_sample(self, server_ms: int, wall_ms: int, rtt: float) -> None:
        self._clock(server_ms, wall_ms, rtt)

    def tick(self, now: float, wall_ms: int) -> None:
        """Run the timers that are due: ticker release grace, stale marks, conflation, snapshot retries."""
        self._now = now
        self._wall_origin = wall_ms - now * 1000.0  # follows `HybridCore.clock()` when the wall clock moved
        deadline = self.deadline()
        if deadline is None or deadline > now:
            return  # the common case: the core calls this on every input (docs/performance.md)
        self._pacer.tick(now)
        self._interest.tick(now)
        self._join.tick(now)
        self._sync.tick(now, wall_ms)
        self._rest.tick(now, wall_ms)
        self._fallback.tick(now, wall_ms)
        back = self._router.return_deadline()
        if back is not None and now >= back:
            self.health(*self._critical, now, wall_ms)
        self._after_rollout(now, wall_ms)

    def deadline(self) -> float | None:
        """When `tick` next has something to do (None: nothing is scheduled)."""
        # The core asks after every read (docs/performance.md): the timer queues in one pass, then the two
        # deadlines that are state, not timers.
        soonest = earliest(self._queues)
        for when in (self._router.return_deadline(), self._pacer.deadline()):
            if when is not None and (soonest is None or when < soonest):
                soonest = when
        return soonest

    # ------------------------------------------------------------------------------------ commands

    def track(self, category: str, symbol: str) -> None:
        """Pin `symbol`'s ticker on `category`'s link, with or without a position (reference counted)."""
        _check_symbol(category, symbol)
        self._interest.pin(category, symbol)

    def untrack(self, category: str, symbol: str) -> None:
        """Drop one pin; the ticker is released after the grace period unless a position or pin remains."""
        _check_symbol(category, symbol)
        if not self._interest.unpin(category, symbol, self._now):
            raise LocalProtocolError(
                f"untrack({category!r}, {symbol!r}) without a matching track(): nothing to drop"
            )

    # ------------------------------------------------------------------------------------ answers

    @property
    def wanted_version(self) -> int:
        """Bumps whenever `wanted_topics()` changes."""
        return self._interest.version

    def wanted_topics(self) -> Mapping[Link, frozenset[str]]:
        """The ticker topics the join needs, per public link (open positions, pins, symbols in grace)."""
        return self._interest.wanted()

    def positions(self) -> dict[PositionKey, Position]:
        """The open positions the application was told of, as their driver last stated them (a copy)."""
        router, out = self._router, {}
        for key, told in router.view.items():
            held = self._rest.get(key) if router.rest_drives(key[1]) else self._book.get(key)
            out[key] = held if held is not None else told
        return out

    def ticker(self, symbol: str, category: str | None = None) -> TickerData | None:
        """The merged ticker of `symbol` (first found in linear, inverse, option, spot when no category)."""
        return self._market.ticker(symbol, category)

    def orderbook(
        self, category: str, symbol: str, depth: int | None = None
    ) -> tuple[tuple[Level, ...], tuple[Level, ...]] | None:
        """`orderbook.{depth}.{symbol}` as (bids, asks), best first; the deepest book held when no depth."""
        book = self._market.book(category, symbol, depth)
        return None if book is None else (book.bids.top(), book.asks.top())

    # ------------------------------------------------------------------------------------ positions

    def _on_positions(self, link: Link, msg: PositionMessage, now: float) -> None:
        topic_category = msg.topic.partition(".")[2]
        for row in msg.data:
            category = row.category or topic_category
            if category not in POSITION_CATEGORIES:
                detail = f"{msg.topic}: position row for {row.symbol!r} has no usable category ({category!r})"
                self._emit(ProtocolProblem(link=link, at=now, detail=detail))
                continue
            mark = None if row.mark_price is None else (row.mark_price, msg.creation_time, now)
            position = to_position(category, row)
            self._apply(position, mark, now, "position", link)
            if self._book.older(position.key) >= self._config.timings.out_of_order_reset:
                self._reset_position(position, mark, now, link)

    def _reset_position(self, position: Position, mark: OwnMark | None, now: float, link: Link) -> None:
        """Pushes for this key keep arriving 'older' than the held seq: the held seq is the suspect (see the
        module doc). Forget it, take this push, and let a REST snapshot say the rest."""
        key = position.key
        reason = (
            f"{self._book.older(key)} pushes in a row for {key[0]} {key[1]} positionIdx {key[2]} with a seq "
            f"below the held seq={self._book.seq(key)} (the last: seq={position.seq})"
        )
        self._emit(TopicReset(link=link, at=now, topic="position", reason=reason, remedy="snapshot"))
        self._book.forget(key)
        self._apply(position, mark, now, "position", link)
        # after the push above: the round's epoch must not count it as "touched since the request went out"
        self._snapshot(now, round(self._wall_origin + now * 1000.0))

    def _apply(
        self,
        position: Position,
        mark: OwnMark | None,
        now: float,
        cause: Literal["position", "snapshot"],
        link: Link,
    ) -> None:
        change, before = self._book.apply(position, mark, stream=cause == "position")
        key = position.key
        if change is Change.OPENED:
            self._stream_out(PositionOpened(link=link, at=now, position=position, cause=cause))
            self._interest.leg_opened(position.category, position.symbol)
            self._join.opened(key, now)
            self._join.position_changed(key, now, cause, link)
        elif change is Change.UPDATED:
            self._join.position_changed(key, now, cause, link)
        elif change is Change.CLOSED and before is not None:
            self._closed(before, position.seq, now, cause, link)

    def _closed(
        self, before: Position, seq: int, now: float, cause: Literal["position", "snapshot"], link: Link
    ) -> None:
        self._join.closed(before.key)
        self._stream_out(PositionClosed(link=link, at=now, position=before, cause=cause, seq=seq))
        self._interest.leg_closed(before.category, before.symbol, now)

    def _reconcile(self, done: CompletedSnapshot, now: float) -> None:
        listed: set[PositionKey] = set()
        for position, mark in done.rows:
            key = position.key
            listed.add(key)
            held = self._book.seq(key)
            if held is not None and held == position.seq and self._book.touched(key) > done.epoch:
                continue  # same seq, but the stream spoke after the request went out: it knows better
            self._apply(position, mark, now, "snapshot", Link.PRIVATE)
        for key in self._book.open_keys(done.category):
            if key not in listed and self._book.touched(key) <= done.epoch:
                before = self._book.close(key)
                self._closed(before, before.seq, now, "snapshot", Link.PRIVATE)
        count = len(self._book.open_keys(done.category))
        self._synced.add(done.category)
        self._stream_out(
            PositionsSynced(link=Link.PRIVATE, at=now, category=done.category, open_positions=count)
        )


def _drop(event: Event) -> None:
    """Where the stream's market data goes while it is only monitored (canary, parallel)."""


def _check_symbol(category: str, symbol: str) -> None:
    if category not in CATEGORIES:
        raise LocalProtocolError(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    if not isinstance(symbol, str) or not symbol or symbol != symbol.strip() or "." in symbol:
        raise LocalProtocolError(f"symbol must be a non-empty name like 'BTCUSDT', got {symbol!r}")
