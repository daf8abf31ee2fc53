"""Public market data: merged tickers, order books, and the pass-through topics (BYBIT_V5.md section 5).

Tickers. Linear and inverse send a snapshot, then deltas that carry only the changed fields ("if a response
param is not found in the message, then its value has not changed"); `""` is a value ("not applicable",
decoded as None), not "unchanged", so it overwrites. Spot and option tickers are snapshot-only: every
message replaces the state. Messages are ordered by `(cs, ts)` (by `ts` alone when either lacks `cs`, as
options do); an older delta is ignored, and an older snapshot too unless the symbol awaits one. A delta before
any snapshot is reported and fabricates nothing. After the link goes down every ticker of that category
awaits its new snapshot: deltas are ignored (reported) until it arrives, and the join calls it stale.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from msgspec import UNSET, structs

from ._codec_public import (
    KlineMessage,
    LiquidationMessage,
    OrderbookMessage,
    PublicTradeMessage,
    TickerData,
    TickerMessage,
)
from ._config import Link
from ._events import Event, KlineUpdate, Liquidations, ProtocolProblem, PublicTrades, TickerUpdate
from ._market_book import Book, Orderbooks

__all__ = ["Market", "TickerState", "Tickers"]

_SNAPSHOT_ONLY = frozenset({"spot", "option"})
_FIELDS = TickerData.__struct_fields__


class TickerState:
    """One symbol's merged ticker and where its mark price came from."""

    __slots__ = ("awaiting_snapshot", "cs", "data", "last_at", "mark", "mark_at", "mark_ts", "ts")

    def __init__(self, data: TickerData, ts: int, cs: int | None, now: float) -> None:
        self.data = data
        self.ts = ts
        self.cs = cs
        self.last_at = now  # when any message for the symbol last arrived (monotonic `now`)
        self.awaiting_snapshot = False
        self.mark: Decimal | None = None
        self.mark_ts: int | None = None  # exchange ms of the message that carried the current mark
        self.mark_at: float | None = None  # `now` when that message arrived


class Tickers:
    """Ticker state per (category, symbol)."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], TickerState] = {}

    def apply(self, link: Link, msg: TickerMessage, now: float) -> tuple[Event | None, TickerState | None]:
        """Apply one message: the event to emit (update or problem) and the state, None when ignored."""
        category = link.value
        key = (category, msg.data.symbol)
        state = self._state.get(key)
        snapshot = msg.type == "snapshot" or category in _SNAPSHOT_ONLY
        if state is None or (snapshot and state.awaiting_snapshot):
            if not snapshot:
                return ProtocolProblem(
                    link=link, at=now, detail=f"{msg.topic}: delta before any snapshot"
                ), None
            state = self._state[key] = TickerState(msg.data, msg.ts, msg.cs, now)
        elif _older(msg, state):
            return None, None
        elif state.awaiting_snapshot:
            return ProtocolProblem(
                link=link, at=now, detail=f"{msg.topic}: delta before the new snapshot"
            ), None
        else:
            state.data = msg.data if snapshot else _merge(state.data, msg.data)
            state.ts, state.cs, state.last_at = msg.ts, msg.cs if msg.cs is not None else state.cs, now
        _note_mark(state, msg, now, snapshot)
        event = TickerUpdate(
            link=link,
            at=now,
            category=category,
            symbol=msg.data.symbol,
            ticker=state.data,
            snapshot=snapshot,
            ts=msg.ts,
            cs=msg.cs,
        )
        return event, state

    def link_down(self, category: str) -> list[str]:
        """Mark every ticker of `category` as awaiting a snapshot; the symbols affected."""
        symbols = []
        for (cat, symbol), state in self._state.items():
            if cat == category:
                state.awaiting_snapshot = True
                symbols.append(symbol)
        return symbols

    def get(self, category: str, symbol: str) -> TickerState | None:
        return self._state.get((category, symbol))


def _older(msg: TickerMessage, state: TickerState) -> bool:
    if msg.cs is not None and state.cs is not None:
        return (msg.cs, msg.ts) < (state.cs, state.ts)
    return msg.ts < state.ts


def _merge(held: TickerData, delta: TickerData) -> TickerData:
    # astuple + zip instead of ~50 getattr calls: a delta carries a handful of its 49 fields, and this runs
    # for every ticker delta (docs/performance.md)
    changed = {
        name: value for name, value in zip(_FIELDS, structs.astuple(delta), strict=True) if value is not UNSET
    }
    return structs.replace(held, **changed)


def _note_mark(state: TickerState, msg: TickerMessage, now: float, snapshot: bool) -> None:
    mark = msg.data.mark_price
    if mark is UNSET and not snapshot:
        return  # the delta did not touch the mark: it is unchanged
    state.mark = mark if isinstance(mark, Decimal) else None
    state.mark_ts, state.mark_at = msg.ts, now


class Market:
    """Every public topic: tickers, books and the pass-through events."""

    __slots__ = ("books", "tickers")

    def __init__(self) -> None:
        self.tickers = Tickers()
        self.books = Orderbooks()

    def on_other(
        self,
        link: Link,
        msg: OrderbookMessage | PublicTradeMessage | KlineMessage | LiquidationMessage,
        now: float,
    ) -> Event | None:
        """Books and the simple pass-through topics; the event to emit."""
        category = link.value
        if isinstance(msg, OrderbookMessage):
            return self.books.apply(link, msg, now)
        if isinstance(msg, PublicTradeMessage):
            return PublicTrades(link=link, at=now, category=category, topic=msg.topic, trades=msg.data)
        if isinstance(msg, KlineMessage):
            return KlineUpdate(link=link, at=now, category=category, topic=msg.topic, candles=msg.data)
        return Liquidations(link=link, at=now, category=category, topic=msg.topic, liquidations=msg.data)

    def link_down(self, category: str) -> list[str]:
        self.books.link_down(category)
        return self.tickers.link_down(category)

    def book(self, category: str, symbol: str, depth: int | None) -> Book | None:
        return self.books.get(category, symbol, depth)

    def ticker(self, symbol: str, category: str | None) -> TickerData | None:
        for cat in (category,) if category is not None else ("linear", "inverse", "option", "spot"):
            state = self.tickers.get(cat, symbol)
            if state is not None:
                return state.data
        return None


Emit = Callable[[Event], None]
