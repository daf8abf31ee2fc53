"""Order books from `orderbook.{depth}.{symbol}` (BYBIT_V5.md section 5, orderbook), and the way back when one
breaks.

A snapshot resets the book, and so does any message with `u == 1` (a service restart: "treat it as a
snapshot"). A delta level of size 0 deletes the price, an unknown price inserts it, a known one updates
it.

How a side is held (the per-level loop is the hottest code of the data plane: docs/performance.md). Each
side is two parallel lists, the prices ascending and their sizes, found with `bisect`: a level costs a
handful of Decimal *comparisons* (about 20 ns each) and no hash. A dict keyed by price would hash every
level's price, and each one is a fresh Decimal from the decoder whose first `hash()` is modular arithmetic
(about 300 ns, more than the whole bisect): measured on the bench stream, the lists apply a delta in less
than half the time of the dict plus sorted index they replace. Both lists end with a +Infinity sentinel, so
the bisect's slot always exists and no level needs a bounds check; the codec refuses non-finite numbers
(`expected a finite decimal of sane magnitude`), so no real price ever equals it. The top of the book is a
position (the best ask first, the best bid just before the sentinel): read in O(1), never sorted. A
snapshot is sorted once (its levels come sorted, so that is one pass) and taken as is when its prices are
distinct and its sizes non-zero; otherwise its levels are applied in order, like a delta's.

Never frozen (the "Never frozen" issue, items 3 and 6). A book that cannot be trusted is dropped and rebuilt
from a fresh snapshot: the plane asks the core to resubscribe the topic (Bybit sends a snapshot after every
subscribe; the core reports a `TopicReset(remedy="resubscribe")` with our reason), and the next snapshot is
taken whatever its `u`. A book is broken when

* a delta deletes a price the book does not hold, or leaves the best bid at or above the best ask: the
  delta does not fit the book, so a message was missed or misapplied (a `ProtocolProblem` says which);
* `Timings.out_of_order_reset` deltas in a row have a `u` not above the held one. One or two are a
  duplicate or a late message and are ignored; a whole run means the held `u` is the odd one out (one
  message far ahead poisons it, and every genuine delta after it looks late).

`u` continuity is not enforced. Bybit documents `u` only as "Update ID. Is a sequence", with `u == 1` as a
restart (bybit-exchange/docs `docs/v5/websocket/public/orderbook.mdx`, read at c06c9665); it never says
that a delta's `u` is the held one plus 1. The "+1 with 0 gaps" of BYBIT_V5.md is a third party's live
probe (PROBE-PP), not a promise: were Bybit to skip ids (conflation, a depth filter), enforcing it would
rebuild healthy books over and over. A missed delta is still caught when it matters, by the two integrity
checks above.

A topic awaiting its snapshot (none yet, or its book was dropped) ignores deltas. The first one of a wait
is reported, the rest are not (no flood), and if deltas keep coming but no snapshot does for
`Timings.topic_quiet_after`, the topic is resubscribed again (pushes that arrive but are never accepted
would otherwise freeze it: the links' watchdog only sees that pushes arrive). Books whose topic has no
depth (`orderbook.full.{symbol}` is delta-only, its snapshot comes over REST) are never resubscribed:
that would bring no snapshot.

A book remembers the link its last message came from: a link going down drops only the books it fed (a
category's topics may be spread over several links).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import islice
from operator import eq, itemgetter

from .._codec import OrderbookMessage
from .._config import Link, Timings
from .._events import Level, OrderbookUpdate, ProtocolProblem

__all__ = ["Book", "Orderbooks", "Resubscribe", "Wait", "book_depth"]

Resubscribe = Callable[[Link, str, str], None]
"""(link, topic, reason): ask the core for a fresh snapshot of `topic` on `link`."""

_DEPTHS_HELD = 1024  # topics whose depth `Orderbooks` remembers
_END = Decimal("Infinity")  # the sentinel that ends both lists of a side (see the module doc)
_PRICE, _SIZE = itemgetter(0), itemgetter(1)


class Wait:
    """A topic awaiting a snapshot: whether its wait was reported, and when to ask for one again.

    `since` is when the count towards the next resubscribe began: when one was asked for, or the first
    rejected push of a wait nobody asked for yet (after a link went down the new subscription brings the
    snapshot; only pushes that keep coming without one call for another request).
    """

    __slots__ = ("link", "reported", "since")

    def __init__(self, link: Link, since: float | None = None, reported: bool = False) -> None:
        self.link = link
        self.since = since
        self.reported = reported

    def rejected(self, now: float, interval: float) -> tuple[bool, bool]:
        """A push was ignored while waiting: (report it: the first of the wait, resubscribe now)."""
        report = not self.reported
        self.reported = True
        if self.since is None:
            self.since = now
            return report, False
        if now >= self.since + interval:
            self.since = now
            return report, True
        return report, False


class _Side:
    """One side of a book: prices ascending and their sizes, in parallel lists ended by a sentinel."""

    __slots__ = ("_best", "prices", "sizes")

    def __init__(self, descending: bool) -> None:
        self._best = -2 if descending else 0  # bids: the highest price, just before the sentinel
        self.prices: list[Decimal] = [_END]
        self.sizes: list[Decimal] = [_END]

    def reset(self, updates: Sequence[Level]) -> None:
        """Replace the side by a snapshot's levels (in order, like deltas, when that differs)."""
        ordered = sorted(updates, key=_PRICE)  # Bybit sends them sorted (bids descending): one pass
        prices, sizes = list(map(_PRICE, ordered)), list(map(_SIZE, ordered))
        if all(sizes) and not any(map(eq, prices, islice(prices, 1, None))):
            prices.append(_END)
            sizes.append(_END)
            self.prices, self.sizes = prices, sizes
            return
        # a zero size or a repeated price (in any spelling): only applying in order says what is left
        self.prices, self.sizes = [_END], [_END]
        self.apply(updates)  # a zero for a price not held is nothing to delete in a snapshot

    def apply(self, updates: Sequence[Level]) -> Decimal | None:
        """Apply delta levels in order: size 0 deletes the price, a new price is inserted in place.

        Returns the first price deleted that the side did not hold (None: every delete found its level).
        """
        prices, sizes = self.prices, self.sizes
        absent = None
        for price, size in updates:
            i = bisect_left(prices, price)
            if prices[i] == price:  # never the sentinel: prices are finite
                if size:
                    sizes[i] = size
                else:
                    del prices[i], sizes[i]
            elif size:
                prices.insert(i, price)
                sizes.insert(i, size)
            elif absent is None:
                absent = price
        return absent

    def best(self) -> Level | None:
        if len(self.prices) == 1:
            return None
        i = self._best
        return (self.prices[i], self.sizes[i])

    def top(self) -> tuple[Level, ...]:
        """Every level, best first."""
        if self._best < 0:  # bids: from just before the sentinel down
            return tuple(zip(self.prices[-2::-1], self.sizes[-2::-1], strict=True))
        return tuple(zip(self.prices[:-1], self.sizes[:-1], strict=True))


class Book:
    """One symbol's book at one depth, and the link its last message came from."""

    __slots__ = ("asks", "bids", "link", "older", "seq", "ts", "u")

    def __init__(self, link: Link) -> None:
        self.bids = _Side(descending=True)
        self.asks = _Side(descending=False)
        self.link = link
        self.older = 0  # deltas in a row whose `u` was not above the held one
        self.u = 0
        self.seq = 0
        self.ts = 0


def book_depth(topic: str) -> int:
    """The depth in `orderbook.{depth}.{symbol}`; 0 for other book topics (e.g. `orderbook.rpi.{symbol}`)."""
    parts = topic.split(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() and len(parts[1]) < 6 else 0


class Orderbooks:
    """Every book held, keyed by (category, symbol, depth), and the topics awaiting a snapshot."""

    __slots__ = ("_books", "_depths", "_limit", "_quiet", "_resubscribe", "_waits")

    def __init__(self, timings: Timings, resubscribe: Resubscribe) -> None:
        self._books: dict[tuple[str, str, int], Book] = {}
        # book_depth per topic: a lookup instead of a split per message; bounded, since the server names them
        self._depths: dict[str, int] = {}
        self._waits: dict[tuple[str, str, int], Wait] = {}
        self._limit = timings.out_of_order_reset
        self._quiet = timings.topic_quiet_after
        self._resubscribe = resubscribe

    def apply(
        self, link: Link, msg: OrderbookMessage, now: float
    ) -> OrderbookUpdate | ProtocolProblem | None:
        """Apply one message; the event to emit, or None when it was ignored."""
        data = msg.data
        depth = self._depths.get(msg.topic)
        if depth is None:
            depth = book_depth(msg.topic)
            if len(self._depths) < _DEPTHS_HELD:
                self._depths[msg.topic] = depth
        category = link.category
        key = (category, data.s, depth)
        book = self._books.get(key)
        reset = msg.type == "snapshot" or data.u == 1
        if not reset:
            if book is None:
                return self._rejected(link, msg, key, now)
            if data.u <= book.u:
                book.older += 1
                if book.older < self._limit:
                    return None  # a duplicate or a late delta, so far
                reason = (
                    f"{book.older} deltas in a row with u not above the held u={book.u} (the last: {data.u})"
                )
                return self._rebuild(link, msg, key, reason, now)
        if book is None:
            book = self._books[key] = Book(link)
            self._waits.pop(key, None)
        if reset:
            book.bids.reset(data.b)
            book.asks.reset(data.a)
        else:
            absent = book.bids.apply(data.b)
            absent_ask = book.asks.apply(data.a)
            if absent is not None or absent_ask is not None:
                side, price = ("bid", absent) if absent is not None else ("ask", absent_ask)
                reason = f"u={data.u} deletes the {side} {price}, which the book does not hold"
                return self._rebuild(link, msg, key, reason, now)
        best_bid, best_ask = book.bids.best(), book.asks.best()
        if not reset and best_bid is not None and best_ask is not None and best_bid[0] >= best_ask[0]:
            reason = f"u={data.u} leaves the book crossed (best bid {best_bid[0]} >= best ask {best_ask[0]})"
            return self._rebuild(link, msg, key, reason, now)
        book.u, book.seq, book.ts, book.link, book.older = data.u, data.seq, msg.ts, link, 0
        return OrderbookUpdate(
            link=link,
            at=now,
            category=category,
            symbol=data.s,
            depth=depth,
            snapshot=reset,
            bids=data.b,
            asks=data.a,
            best_bid=best_bid,
            best_ask=best_ask,
            u=data.u,
            seq=data.seq,
            ts=msg.ts,
            cts=msg.cts,
        )

    def link_down(self, link: Link) -> None:
        """`link` went down: the books it fed are unknown until the snapshot after the re-subscribe."""
        for key in [key for key, book in self._books.items() if book.link is link]:
            del self._books[key]
        for key in [key for key, wait in self._waits.items() if wait.link is link]:
            del self._waits[key]  # the new connection's subscription brings the snapshot: a new wait

    def get(self, category: str, symbol: str, depth: int | None) -> Book | None:
        if depth is not None:
            return self._books.get((category, symbol, depth))
        held = [key for key in self._books if key[0] == category and key[1] == symbol]
        return self._books[max(held, key=lambda key: key[2])] if held else None

    # ---------------------------------------------------------------------------------------- internal

    def _rebuild(
        self, link: Link, msg: OrderbookMessage, key: tuple[str, str, int], reason: str, now: float
    ) -> ProtocolProblem:
        """Drop a broken book and ask for a fresh snapshot; the problem to report."""
        del self._books[key]
        # reported here (and by the core's TopicReset): the deltas ignored until the snapshot are not
        self._waits[key] = Wait(link, since=now, reported=True)
        if key[2]:
            self._resubscribe(link, msg.topic, f"book broken: {reason}")
        detail = f"{msg.topic}: {reason}: book dropped, to be rebuilt from a fresh snapshot"
        return ProtocolProblem(link=link, at=now, detail=detail)

    def _rejected(
        self, link: Link, msg: OrderbookMessage, key: tuple[str, str, int], now: float
    ) -> ProtocolProblem | None:
        """A delta for a book awaiting its snapshot: reported once per wait, resubscribed if none comes."""
        wait = self._waits.get(key)
        if wait is None:
            wait = self._waits[key] = Wait(link)
        report, ask = wait.rejected(now, self._quiet)
        if ask and key[2]:
            self._resubscribe(link, msg.topic, f"deltas for {self._quiet:g} s but no snapshot")
        if not report:
            return None
        detail = f"{msg.topic}: delta before any snapshot ignored (and so are the next ones until it arrives)"
        return ProtocolProblem(link=link, at=now, detail=detail)
