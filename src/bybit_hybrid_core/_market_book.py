"""Order books from `orderbook.{depth}.{symbol}` (BYBIT_V5.md section 5, orderbook).

A snapshot resets the book, and so does any message with `u == 1` (a service restart: "treat it as a
snapshot"). A delta level of size 0 deletes the price, an unknown price inserts it, a known one updates
it. A delta whose `u` is not above the held one is a duplicate or late and is ignored; a delta before any
snapshot is reported and builds nothing. Prices are kept sorted ascending with `bisect` (the best ask
first, the best bid last), so reading the top of the book never sorts, and a level costs no arithmetic
(the per-level loop is the hottest code of the data plane: docs/performance.md).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from decimal import Decimal

from ._codec_public import OrderbookMessage
from ._config import Link
from ._events import Level, OrderbookUpdate, ProtocolProblem

__all__ = ["Book", "Orderbooks", "book_depth"]


class _Side:
    """One side of a book: price -> size, plus the prices in ascending order."""

    __slots__ = ("_descending", "_keys", "levels")

    def __init__(self, descending: bool) -> None:
        self._descending = descending  # bids: the best price is the highest, at the end of `_keys`
        self._keys: list[Decimal] = []  # every price of `levels`, ascending
        self.levels: dict[Decimal, Decimal] = {}

    def reset(self, updates: Iterable[Level]) -> None:
        """Replace the side by a snapshot's levels (applied in order, like deltas), sorting once."""
        levels = self.levels
        levels.clear()
        for price, size in updates:
            if size:
                levels[price] = size
            else:
                levels.pop(price, None)
        self._keys = sorted(levels)

    def apply(self, updates: Iterable[Level]) -> None:
        """Apply delta levels in order: size 0 deletes the price, a new price is inserted in place."""
        keys, levels = self._keys, self.levels
        for price, size in updates:
            if not size:
                if levels.pop(price, None) is not None:
                    del keys[bisect_left(keys, price)]
                continue
            if price not in levels:
                insort(keys, price)
            levels[price] = size

    def best(self) -> Level | None:
        if not self._keys:
            return None
        price = self._keys[-1] if self._descending else self._keys[0]
        return (price, self.levels[price])

    def top(self, limit: int | None = None) -> tuple[Level, ...]:
        keys = self._keys[::-1] if self._descending else self._keys
        levels = self.levels
        return tuple((price, levels[price]) for price in keys[:limit])


class Book:
    """One symbol's book at one depth."""

    __slots__ = ("asks", "bids", "seq", "ts", "u")

    def __init__(self) -> None:
        self.bids = _Side(descending=True)
        self.asks = _Side(descending=False)
        self.u = 0
        self.seq = 0
        self.ts = 0


def book_depth(topic: str) -> int:
    """The depth in `orderbook.{depth}.{symbol}`; 0 for other book topics (e.g. `orderbook.rpi.{symbol}`)."""
    parts = topic.split(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() and len(parts[1]) < 6 else 0


class Orderbooks:
    """Every book held, keyed by (category, symbol, depth)."""

    __slots__ = ("_books",)

    def __init__(self) -> None:
        self._books: dict[tuple[str, str, int], Book] = {}

    def apply(
        self, link: Link, msg: OrderbookMessage, now: float
    ) -> OrderbookUpdate | ProtocolProblem | None:
        """Apply one message; the event to emit, or None when it was a duplicate or late delta."""
        data = msg.data
        depth = book_depth(msg.topic)
        key = (link.value, data.s, depth)
        book = self._books.get(key)
        reset = msg.type == "snapshot" or data.u == 1
        if not reset:
            if book is None:
                return ProtocolProblem(
                    link=link, at=now, detail=f"{msg.topic}: delta before any snapshot ignored"
                )
            if data.u <= book.u:
                return None
        if book is None:
            book = self._books[key] = Book()
        if reset:
            book.bids.reset(data.b)
            book.asks.reset(data.a)
        else:
            book.bids.apply(data.b)
            book.asks.apply(data.a)
        book.u, book.seq, book.ts = data.u, data.seq, msg.ts
        return OrderbookUpdate(
            link=link,
            at=now,
            category=link.value,
            symbol=data.s,
            depth=depth,
            snapshot=reset,
            bids=data.b,
            asks=data.a,
            best_bid=book.bids.best(),
            best_ask=book.asks.best(),
            u=data.u,
            seq=data.seq,
            ts=msg.ts,
            cts=msg.cts,
        )

    def link_down(self, category: str) -> None:
        """A link went down: its books are unknown until the snapshot after the re-subscribe."""
        for key in [key for key in self._books if key[0] == category]:
            del self._books[key]

    def get(self, category: str, symbol: str, depth: int | None) -> Book | None:
        if depth is not None:
            return self._books.get((category, symbol, depth))
        held = [key for key in self._books if key[0] == category and key[1] == symbol]
        return self._books[max(held, key=lambda key: key[2])] if held else None
