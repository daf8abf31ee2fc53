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
from random import Random
from typing import Any

from ._venue_instruments import Instrument

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
        self._restart = False
        self._last_sent = 0

    def snapshot(self, bid: int, ask: int, ts: int, seq: int) -> Json:
        """Re-centre on (bid, ask) and answer the whole book as a snapshot (same `u`: nothing new)."""
        if not self.bids:
            self._recentre(bid, ask)
        return self._message("snapshot", self.bids, self.asks, ts, seq)

    def restart(self) -> None:
        """The next message is a snapshot with u = 1 (a Bybit service restart, BYBIT_V5.md §5)."""
        self._restart = True

    def step(self, bid: int, ask: int, ts: int, seq: int) -> Json | None:
        """Move the book to the quote's top; the message due (delta, level-1 snapshot) or None."""
        old_bids, old_asks = dict(self.bids), dict(self.asks)
        self._recentre(bid, ask)
        self._jiggle(self.bids)
        self._jiggle(self.asks)
        if self._restart:
            self._restart = False
            self.u = 1
            self._last_sent = ts
            return self._message("snapshot", self.bids, self.asks, ts, seq)
        changed_b = _diff(old_bids, self.bids)
        changed_a = _diff(old_asks, self.asks)
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

    def _recentre(self, bid: int, ask: int) -> None:
        fresh = self._fresh_size
        self.bids = {p: self.bids.get(p) or fresh() for p in range(bid, bid - self.depth, -1)}
        self.asks = {p: self.asks.get(p) or fresh() for p in range(ask, ask + self.depth)}

    def _jiggle(self, side: dict[int, Decimal]) -> None:
        prices = list(side)
        for _ in range(self._rng.randint(0, 3)):
            side[self._rng.choice(prices)] = self._fresh_size()

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


def _diff(old: dict[int, Decimal], new: dict[int, Decimal]) -> dict[int, Decimal]:
    """Levels whose size differs between `old` and `new`; removed levels get size 0."""
    changed = {p: s for p, s in new.items() if old.get(p) != s}
    changed.update({p: Decimal(0) for p in old if p not in new})
    return changed
