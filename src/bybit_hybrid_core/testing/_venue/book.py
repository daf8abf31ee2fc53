"""One order book stream `orderbook.{depth}.{symbol}`: a snapshot, then deltas with `u` rising by 1.

The book is a ladder of one level per tick below the best bid and above the best ask, `depth` levels per
side, re-centred each step on the quote's top of book; a few sizes change each step. Deltas list only the
levels that changed, with size "0" for removed ones (BYBIT_V5.md §5 orderbook). Level 1 is snapshot-only:
a snapshot when the top changes, and the same snapshot with the same `u` after 3 s without change. After a
service restart the next message is a snapshot with `u` = 1.

Each book draws from its own `Random` (seeded from the venue seed and the topic), so opening or closing a
book never changes the market's walk.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import chain
from random import Random
from typing import Any

from .instruments import Instrument

__all__ = ["Book"]

Json = dict[str, Any]
_L1_RESEND_MS = 3000


class Book:
    """The levels and update ids of one book topic."""

    def __init__(self, inst: Instrument, depth: int, topic: str, rng: Random, u: int) -> None:
        self.inst = inst
        self.depth = depth
        self.topic = topic
        self._rng = rng
        self.u = u
        self.bids: dict[int, Decimal] = {}  # price ticks -> size
        self.asks: dict[int, Decimal] = {}
        self._bid_range = range(0)  # the ladders' price ranges (ticks, ascending)
        self._ask_range = range(0)
        self._restart = False
        self._last_sent = 0

    def snapshot(self, bid: int, ask: int, ts: int, seq: int) -> Json:
        """The whole book as a snapshot (same `u`: nothing new); a new book is centred on (bid, ask)."""
        if not self.bids:
            self._recentre(bid, ask, {}, {})
        return self._message("snapshot", self.bids, self.asks, ts, seq)

    def restart(self) -> None:
        """The next message is a snapshot with u = 1 (a Bybit service restart, BYBIT_V5.md §5)."""
        self._restart = True

    def step(self, bid: int, ask: int, ts: int, seq: int) -> Json | None:
        """Move the book to the quote's top; the message due (delta, level-1 snapshot) or None."""
        changed_b: dict[int, Decimal] = {}
        changed_a: dict[int, Decimal] = {}
        self._recentre(bid, ask, changed_b, changed_a)
        self._jiggle(self.bids, self._bid_range, changed_b)
        self._jiggle(self.asks, self._ask_range, changed_a)
        if self._restart:
            self._restart = False
            self.u = 1
            self._last_sent = ts
            return self._message("snapshot", self.bids, self.asks, ts, seq)
        if self.depth == 1:
            if changed_b or changed_a:
                self.u += 1
            elif ts - self._last_sent < _L1_RESEND_MS:
                return None
            self._last_sent = ts
            return self._message("snapshot", self.bids, self.asks, ts, seq)
        if not changed_b and not changed_a:
            return None
        self.u += 1
        return self._message("delta", changed_b, changed_a, ts, seq)

    def _recentre(
        self, bid: int, ask: int, changed_b: dict[int, Decimal], changed_a: dict[int, Decimal]
    ) -> None:
        # a book never reaches zero: a cheap contract shows fewer bid levels instead
        bids = range(max(1, bid - self.depth + 1), bid + 1)
        asks = range(ask, ask + self.depth)
        self._move(self.bids, self._bid_range, bids, changed_b)
        self._move(self.asks, self._ask_range, asks, changed_a)
        self._bid_range, self._ask_range = bids, asks

    def _move(self, side: dict[int, Decimal], old: range, new: range, changed: dict[int, Decimal]) -> None:
        """Slide one contiguous ladder from `old` to `new`, touching only the levels that left or came."""
        for p in chain(range(old.start, min(old.stop, new.start)), range(max(old.start, new.stop), old.stop)):
            del side[p]
            changed[p] = Decimal(0)
        for p in chain(range(new.start, min(new.stop, old.start)), range(max(new.start, old.stop), new.stop)):
            side[p] = changed[p] = self._fresh_size()

    def _jiggle(self, side: dict[int, Decimal], ladder: range, changed: dict[int, Decimal]) -> None:
        """A few sizes change each step."""
        for _ in range(self._rng.randint(0, 3) if ladder else 0):
            p = ladder[self._rng.randrange(len(ladder))]
            size = self._fresh_size()
            if side[p] != size:
                side[p] = changed[p] = size

    def _fresh_size(self) -> Decimal:
        return self.inst.qty_step * self._rng.randint(1, 5000)

    def _message(
        self, kind: str, bids: dict[int, Decimal], asks: dict[int, Decimal], ts: int, seq: int
    ) -> Json:
        inst = self.inst
        data = {
            "s": inst.symbol,
            "b": [[str(inst.px(p)), _size(inst, bids[p])] for p in sorted(bids, reverse=True)],
            "a": [[str(inst.px(p)), _size(inst, asks[p])] for p in sorted(asks)],
            "u": self.u,
            "seq": seq,
        }
        if inst.category == "option":  # option books carry an `id` (sample public-orderbook-option-l25-...)
            return {
                "topic": self.topic,
                "ts": ts,
                "type": kind,
                "id": f"{self.topic}-{seq}-{ts}",
                "data": data,
                "cts": ts - 2,
            }
        return {"topic": self.topic, "type": kind, "ts": ts, "data": data, "cts": ts - 2}


def _size(inst: Instrument, size: Decimal) -> str:
    return "0" if size == 0 else inst.qty(size)
