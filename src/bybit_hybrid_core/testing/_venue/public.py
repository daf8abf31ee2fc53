"""The public side of the Venue: which pushes each step makes for the subscribed topics (BYBIT_V5.md §5).

Per step, in this order for each category and each subscribed topic (sorted): tickers (linear/inverse: the
delta of changed fields, or a snapshot after a restart; spot/option: a fresh snapshot, being snapshot-only),
order books (a delta, or a level-1 snapshot), public trades (bursts), klines (every second, plus the closed
candle with `confirm: true` when one ends), allLiquidation (every 500 ms when there was one).

Books and candles exist only while subscribed: the exchange passes the subscribed topics to every step,
and a book nobody listens to is dropped (its `u` is remembered so a new subscriber sees it continue).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from random import Random
from typing import Any

from .book import Book
from .instruments import CATEGORIES, Instrument
from .market import Market, Quote, Trade
from .tape import Candle, liquidation_message, trade_message
from .topics import Topic, parse_topic

__all__ = ["PublicFeed", "ticker_message"]

Json = dict[str, Any]
Push = tuple[str, str, Json]
Key = tuple[str, str]


def ticker_message(q: Quote, kind: str, data: Mapping[str, str]) -> Json:
    """A `tickers.{symbol}` push in the category's envelope (samples public-tickers-*)."""
    topic, cat = f"tickers.{q.inst.symbol}", q.inst.category
    if cat == "spot":
        return {"topic": topic, "ts": q.ts, "type": "snapshot", "cs": q.cs, "data": dict(data)}
    if cat == "option":  # no cs; an `id` instead
        return {
            "topic": topic,
            "ts": q.ts,
            "type": "snapshot",
            "id": f"{topic}-{q.cs}-{q.ts}",
            "data": dict(data),
        }
    return {"topic": topic, "type": kind, "data": dict(data), "cs": q.cs, "ts": q.ts}


class PublicFeed:
    """Market, books, candles and pending liquidations, turned into pushes step by step."""

    def __init__(self, seed: int, start_ms: int) -> None:
        self._seed = seed
        self.market = Market(Random(seed), start_ms)
        self.instruments: dict[Key, Instrument] = {}
        self.option_bases: set[str] = set()
        self._books: dict[Key, Book] = {}  # (category, topic)
        self._book_u: dict[Key, int] = {}  # last u of books dropped while unsubscribed
        self._made = 0
        self._candles: dict[Key, Candle] = {}
        self._liqs: dict[Key, list[tuple[int, str, str, str]]] = {}
        self._parsed: dict[Key, Topic | None] = {}

    def add(self, inst: Instrument) -> None:
        self.instruments[(inst.category, inst.symbol)] = inst
        if inst.category == "option":
            self.option_bases.add(inst.base)
        self.market.add(inst)
        self._parsed.clear()

    def parse(self, category: str, topic: str) -> Topic | None:
        key = (category, topic)
        if key not in self._parsed:
            self._parsed[key] = parse_topic(category, topic, self.instruments, self.option_bases)
        return self._parsed[key]

    def quote(self, category: str, symbol: str) -> Quote:
        return self.market.quotes[(category, symbol)]

    # -------------------------------------------------------------------------------------- snapshot

    def snapshot(self, category: str, topic: str) -> Json | None:
        """The first message after a subscribe: the ticker or the whole book as the stream shows it now."""
        t = self.parse(category, topic)
        if t is None:
            return None
        if t.kind == "tickers":
            q = self.quote(category, t.symbol)
            if category in ("linear", "inverse"):
                return ticker_message(q, "snapshot", q.shown)
            return ticker_message(q, "snapshot", self.market.ticker_fields(q))
        if t.kind == "orderbook":
            q = self.quote(category, t.symbol)
            return self._book(category, topic, t).snapshot(q.bid, q.ask, q.ts, q.cs)
        return None  # trades, klines and liquidations have no initial message

    def _book(self, category: str, topic: str, t: Topic) -> Book:
        key = (category, topic)
        book = self._books.get(key)
        if book is None:
            self._made += 1
            rng = Random(f"{self._seed}:{category}:{topic}:{self._made}")
            u = self._book_u.pop(key, None)
            u = rng.randint(1_000_000, 90_000_000) if u is None else u + 1
            book = self._books[key] = Book(
                self.instruments[(category, t.symbol)], int(t.param), topic, rng, u
            )
        return book

    # ------------------------------------------------------------------------------------------ steps

    def restart(self) -> None:
        """A service restart: books send a u = 1 snapshot next, linear/inverse tickers a fresh snapshot."""
        for book in self._books.values():
            book.restart()
        self._book_u = dict.fromkeys(self._book_u, 0)
        for q in self.market.quotes.values():
            q.resnap = q.inst.category in ("linear", "inverse")

    def jump(self, steps: int, ts: int) -> None:
        self.market.jump(steps, ts)

    def step(
        self, ts: int, subscribed: Mapping[str, Collection[str]], *, kline: bool, liq: bool
    ) -> list[Push]:
        """One step of the market; the pushes due for the subscribed topics."""
        trades = self.market.step(ts)
        for (cat, sym), side, qty, price in self.market.liquidations(ts):
            inst = self.instruments[(cat, sym)]
            self.add_liquidation(cat, sym, (ts - 3, side, inst.qty(qty), str(inst.px(price))))
        tickers = self._ticker_pushes()
        out: list[Push] = []
        live: set[Key] = set()
        for cat in CATEGORIES:
            for topic in sorted(subscribed.get(cat, ())):
                t = self.parse(cat, topic)
                if t is not None:
                    live.add((cat, topic))
                    out += [
                        (cat, topic, m) for m in self._topic_step(t, topic, ts, trades, tickers, kline, liq)
                    ]
        for key in [k for k in self._books if k not in live]:
            self._book_u[key] = self._books.pop(key).u
        for key in [k for k in self._candles if k not in live]:
            del self._candles[key]
        if liq:
            self._liqs.clear()
        return out

    def _ticker_pushes(self) -> dict[Key, Json]:
        """Linear/inverse ticker messages of this step, made for every symbol (so deltas stay exact)."""
        out = {}
        for key, q in self.market.quotes.items():
            if key[0] not in ("linear", "inverse"):
                continue
            if q.resnap:
                q.resnap = False
                q.shown = self.market.ticker_fields(q)
                out[key] = ticker_message(q, "snapshot", q.shown)
            elif (delta := self.market.ticker_delta(q)) is not None:
                out[key] = ticker_message(q, "delta", delta)
        return out

    def _topic_step(
        self,
        t: Topic,
        topic: str,
        ts: int,
        trades: dict[Key, list[Trade]],
        tickers: dict[Key, Json],
        kline: bool,
        liq: bool,
    ) -> list[Json]:
        cat, key = t.category, (t.category, t.symbol)
        if t.kind == "tickers":
            if cat in ("linear", "inverse"):
                return [tickers[key]] if key in tickers else []
            q = self.quote(cat, t.symbol)
            return [ticker_message(q, "snapshot", self.market.ticker_fields(q))]
        if t.kind == "orderbook":
            return self._book_step(t, topic, ts)
        if t.kind == "publicTrade":
            return self._trades(t, topic, ts, trades)
        if t.kind == "kline":
            return self._kline(t, topic, ts, trades.get(key, []), kline)
        rows = self._liqs.get(key)
        return [liquidation_message(topic, rows, ts)] if liq and rows else []

    def _book_step(self, t: Topic, topic: str, ts: int) -> list[Json]:
        q = self.quote(t.category, t.symbol)
        fresh = (t.category, topic) not in self._books
        book = self._book(t.category, topic, t)
        msg = book.snapshot(q.bid, q.ask, ts, q.cs) if fresh else book.step(q.bid, q.ask, ts, q.cs)
        return [msg] if msg is not None else []

    def _trades(self, t: Topic, topic: str, ts: int, trades: dict[Key, list[Trade]]) -> list[Json]:
        if t.category != "option":
            burst = trades.get((t.category, t.symbol))
            if not burst:
                return []
            q = self.quote(t.category, t.symbol)
            return [trade_message(topic, [(q, tr) for tr in burst], ts)]
        rows = [
            (self.market.quotes[key], tr)
            for key, burst in trades.items()
            if key[0] == "option" and self.instruments[key].base == t.symbol
            for tr in burst
        ]
        if not rows:
            return []
        under = self.market.quotes.get(("linear", rows[0][0].inst.underlying))
        return [trade_message(topic, rows, ts, under)]

    def _kline(self, t: Topic, topic: str, ts: int, trades: list[Trade], due: bool) -> list[Json]:
        q = self.quote(t.category, t.symbol)
        candle = self._candles.get((t.category, topic))
        if candle is None:
            candle = self._candles[(t.category, topic)] = Candle(topic, q.inst, t.param, q.last, ts)
        out = candle.update(q.last, trades, ts)
        if due or out:
            out.append(candle.message(ts))
        return out

    def add_liquidation(self, category: str, symbol: str, row: tuple[int, str, str, str]) -> None:
        """Queue an allLiquidation row (T ms, side liquidated, size, price) for the next 500 ms push."""
        self._liqs.setdefault((category, symbol), []).append(row)
