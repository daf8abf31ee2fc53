"""Pricing open positions at the live mark: the `PositionUpdate` stream (ARCHITECTURE.md "The hybrid join").

Theory of operation. Each open position has a *view*: what its last `PositionUpdate` said. Whenever the
position or its symbol's ticker changes, or time makes the mark stale, the view is recomputed and an event
goes out only if something the application can see changed: the position's fields (not merely its seq or
update time), the mark price, or the stale flag. PnL follows from those, so it is not compared.

Where the mark comes from. The symbol's ticker once it speaks: the first ticker message that arrives after
the symbol gained its first open leg (or one that arrived less than `stale_mark_after` before, when the
ticker was already streaming for someone else). Until then, the position's own mark price, which is only as
fresh as the last position push (BYBIT_V5.md section 6: "markPrice and unrealisedPnl in a position message
are stale between pushes").

Staleness. A mark is stale when no ticker message arrived for `stale_mark_after` seconds (any message: a
quiet market sends deltas without markPrice, which still prove the mark unchanged), counted from the
symbol's first open leg when no ticker arrived at all, and at once while the ticker's link is down.

REST marks (the marks fallback, `Rollout.marks_fallback_after`). While a symbol's ticker is stale, a mark
polled over REST (`rest_mark`) prices its legs, with `source="rest"` and not stale, for `stale_mark_after`
after it arrived or two poll intervals, whichever is longer (so it speaks until the next poll is due); a
fresh ticker always wins over it.

Conflation. With `mark_min_interval > 0`, mark-caused updates of one position go out at most once per
interval; one held back is delivered when the interval ends, with the latest values. Position-caused
updates go out at once and carry the latest mark anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, TypeGuard

from .._config import Link, Timings
from .._events import Event, Position, PositionKey, PositionUpdate
from .._timers import Deadlines
from .account import PositionBook
from .market import Tickers, TickerState
from .pnl import pnl_pct, unrealised_pnl

__all__ = ["Join", "position_fields", "position_update"]

Cause = Literal["position", "mark", "snapshot"]
Source = Literal["ticker", "rest", "position"]
_Timer = tuple[Literal["stale"], str, str] | tuple[Literal["conflate"], PositionKey]


def _speaks_for(ticker: TickerState | None, watch: float, after: float) -> TypeGuard[TickerState]:
    """Whether the symbol's ticker is its mark source: it spoke after the symbol's first open leg (`watch`),
    or less than `after` (stale_mark_after) before it. One rule for pricing and for arming the stale timer."""
    return ticker is not None and ticker.last_at > watch - after


class _View:
    """What the last `PositionUpdate` of one position said. `position` is the object whose `fields` those
    are, so a mark-caused refresh of an unchanged position compares by identity, not field by field."""

    __slots__ = ("emitted_at", "fields", "mark", "position", "stale")

    def __init__(self) -> None:
        self.emitted_at: float | None = None
        self.fields: tuple[object, ...] = ()
        self.position: Position | None = None
        self.mark: Decimal | None = None
        self.stale: bool | None = None


def position_fields(p: Position) -> tuple[object, ...]:
    """What of a position the application sees change (not its seq or update time)."""
    return (
        p.side, p.size, p.avg_price, p.leverage, p.liq_price, p.take_profit, p.stop_loss, p.trailing_stop,
        p.position_status,
    )  # fmt: skip


class Join:
    """The views of every open position, their stale and conflation timers, and the events they cause."""

    __slots__ = (
        "_book",
        "_emit",
        "_legs",
        "_rest",
        "_rest_for",
        "_tickers",
        "_timers",
        "_timings",
        "_views",
        "_watch",
    )

    def __init__(
        self,
        timings: Timings,
        book: PositionBook,
        tickers: Tickers,
        emit: Callable[[Event], None],
        rest_mark_for: float | None = None,
    ):
        self._timings = timings
        # How long a polled REST mark speaks for: at least until the next poll is due (two poll intervals),
        # or a poll interval longer than `stale_mark_after` would flip the source between polls.
        self._rest_for = max(timings.stale_mark_after, rest_mark_for or 0.0)
        self._book = book
        self._tickers = tickers
        self._emit = emit
        self._views: dict[PositionKey, _View] = {}
        self._legs: dict[tuple[str, str], dict[PositionKey, None]] = {}
        self._watch: dict[tuple[str, str], float] = {}  # when the symbol got its first open leg
        self._rest: dict[tuple[str, str], tuple[Decimal, int, float]] = {}  # (mark, ts, at) polled over REST
        # ("stale", category, symbol): re-check a symbol's mark; ("conflate", key): a held-back update
        self._timers: Deadlines[_Timer] = Deadlines()

    # -------------------------------------------------------------------------------- lifecycle

    def opened(self, key: PositionKey, now: float) -> None:
        legs = self._legs.setdefault((key[0], key[1]), {})
        if not legs:
            self._watch[(key[0], key[1])] = now
        legs[key] = None
        self._views[key] = _View()

    def closed(self, key: PositionKey) -> None:
        """The position closed: forget its view and anything pending for it."""
        self._views.pop(key, None)
        self._timers.cancel(("conflate", key))
        legs = self._legs[(key[0], key[1])]
        del legs[key]
        if not legs:
            del self._legs[(key[0], key[1])]
            del self._watch[(key[0], key[1])]
            self._rest.pop((key[0], key[1]), None)
            self._timers.cancel(("stale", key[0], key[1]))

    # -------------------------------------------------------------------------------- triggers

    def position_changed(self, key: PositionKey, now: float, cause: Cause, link: Link) -> None:
        """The position itself changed: price it now (never conflated)."""
        self._timers.cancel(("conflate", key))
        self._refresh(key, now, cause, link)
        self._arm_stale(key[0], key[1], now)

    def mark_changed(self, category: str, symbol: str, now: float) -> None:
        """The symbol's ticker spoke, was reset or lost its link: re-price its legs, conflating if asked."""
        legs = self._legs.get((category, symbol))
        if not legs:
            return  # the common case: most tickers price no position
        interval = self._timings.mark_min_interval
        for key in list(legs):
            view = self._views[key]
            if interval > 0 and view.emitted_at is not None and now < view.emitted_at + interval:
                held: _Timer = ("conflate", key)
                if held not in self._timers:
                    self._timers.set(held, view.emitted_at + interval)
                continue
            self._refresh(key, now, "mark", None)
        self._arm_stale(category, symbol, now)

    def rest_mark(self, category: str, symbol: str, mark: Decimal, ts: int, now: float) -> None:
        """A mark polled over REST for a symbol whose ticker is stale: it prices the legs until it ages."""
        if (category, symbol) not in self._legs:
            return  # no open leg (closed meanwhile): nothing to price
        self._rest[(category, symbol)] = (mark, ts, now)
        self.mark_changed(category, symbol, now)
        name: _Timer = ("stale", category, symbol)
        ages = now + self._rest_for  # re-check when this mark stops speaking
        held = self._timers.get(name)
        if held is None or ages < held:
            self._timers.set(name, ages)

    def replay(self, key: PositionKey, now: float, cause: Cause) -> None:
        """Emit the position's `PositionUpdate` even if nothing changed (a hand-over between sources)."""
        view = self._views.get(key)
        if view is not None:
            view.position, view.fields = None, ()
            self._refresh(key, now, cause, None)

    def dark(self, now: float, after: float) -> list[tuple[str, str]]:
        """The symbols with an open leg whose ticker has not spoken fresh for `after` seconds (their marks
        come from REST, if anywhere), in a stable order."""
        dark = []
        for category, symbol in self._legs:
            ticker = self._tickers.get(category, symbol)
            watch = self._watch[(category, symbol)]
            # stale since its last accepted message (a ticker awaiting a snapshot accepts none), not since the
            # link went down or the position opened: `after` counts from when the mark stopped being live
            since = ticker.last_at if ticker is not None else watch
            if now >= max(since, watch) + after:
                dark.append((category, symbol))
        return sorted(dark)

    def tick(self, now: float) -> None:
        for timer in self._timers.due(now):
            match timer:
                case ("stale", category, symbol):
                    self.mark_changed(category, symbol, now)
                case ("conflate", key):
                    self._refresh(key, now, "mark", None)

    def deadline(self) -> float | None:
        return self._timers.earliest()

    def queues(self) -> tuple[Deadlines[Any], ...]:
        """The timer queues behind `deadline()` (the data plane takes their earliest in one pass)."""
        return (self._timers,)

    # -------------------------------------------------------------------------------- pricing

    def _link(self, category: str, symbol: str) -> Link:
        """The link a mark-caused update names: the one the symbol's ticker last came from (a category's
        topics may be spread over several links), else the category's first link."""
        ticker = self._tickers.get(category, symbol)
        return ticker.link if ticker is not None else Link(category)

    def _mark(
        self, key: PositionKey, now: float
    ) -> tuple[Decimal | None, int | None, float | None, bool, Source]:
        """(mark, its exchange ms, when it arrived, stale, source) for the position at `key`."""
        category, symbol, _ = key
        after = self._timings.stale_mark_after
        watch = self._watch.get((category, symbol), now)
        ticker = self._tickers.get(category, symbol)
        rest = self._rest.get((category, symbol)) if self._rest else None
        if rest is not None and not now < rest[2] + self._rest_for:
            rest = None  # aged: it speaks for nothing any more
        if _speaks_for(ticker, watch, after) and ticker.mark is not None:
            # `now >= last_at + after`, the same float sum `_arm_stale` arms: `now - last_at >= after` can be
            # False at the very deadline (18.705 - 13.705 < 5.0), which re-armed the timer at `now` forever.
            stale = ticker.awaiting_snapshot or now >= ticker.last_at + after
            if not stale or rest is None or rest[2] <= ticker.last_at:
                return ticker.mark, ticker.mark_ts, ticker.mark_at, stale, "ticker"
        if rest is not None:
            return rest[0], rest[1], rest[2], False, "rest"
        own = self._book.own_mark(key)
        stale = now >= watch + after  # the sum the timer is armed at (see above)
        if own is None:
            return None, None, None, stale, "position"
        return own[0], own[1], own[2], stale, "position"

    def _refresh(self, key: PositionKey, now: float, cause: Cause, link: Link | None) -> None:
        """Price the position at `key` and emit a `PositionUpdate` if what it says changed. `link` None: the
        one the symbol's ticker came from (`_link`), looked up only when an update goes out."""
        position = self._book.get(key)
        view = self._views[key]
        assert position is not None  # views exist exactly for open positions (opened/closed)
        mark, mark_ts, mark_at, stale, source = self._mark(key, now)
        # A ticker message that did not move the mark leaves the very same objects in place: identity
        # answers first, and the Decimal comparisons and the PnL below run only when something moved.
        fields = view.fields
        if position is not view.position:
            fields = position_fields(position)
            if fields == view.fields:
                view.position = position  # the same fields: the view speaks for this object too
        if view.position is position and (mark is view.mark or mark == view.mark) and stale == view.stale:
            return
        if cause == "snapshot" and source == "position":
            source = "rest"  # the own mark of a REST snapshot row
        where = self._link(key[0], key[1]) if link is None else link
        self._emit(position_update(where, now, position, mark, mark_ts, mark_at, cause, stale, source))
        view.emitted_at, view.fields, view.position = now, fields, position
        view.mark, view.stale = mark, stale

    def _arm_stale(self, category: str, symbol: str, now: float) -> None:
        """Make sure a timer fires no later than the symbol's mark turns stale (it re-checks then)."""
        name: _Timer = ("stale", category, symbol)
        if name in self._timers:
            return
        after = self._timings.stale_mark_after
        ticker = self._tickers.get(category, symbol)
        watch = self._watch[(category, symbol)]
        base = ticker.last_at if _speaks_for(ticker, watch, after) else watch
        if base + after > now:
            self._timers.set(name, base + after)


def position_update(
    link: Link,
    now: float,
    position: Position,
    mark: Decimal | None,
    mark_ts: int | None,
    mark_at: float | None,
    cause: Cause,
    stale: bool,
    source: Source,
) -> PositionUpdate:
    """`position` priced at `mark` (PnL in Decimal): the one place a `PositionUpdate` is built."""
    if mark is None:
        pnl = None
    else:
        pnl = unrealised_pnl(position.category, position.side, position.size, position.avg_price, mark)
    return PositionUpdate(
        link=link,
        at=now,
        category=position.category,
        symbol=position.symbol,
        position_idx=position.position_idx,
        side=position.side,
        size=position.size,
        avg_price=position.avg_price,
        mark_price=mark,
        mark_ts=mark_ts,
        mark_age=None if mark_at is None else now - mark_at,
        unrealised_pnl=pnl,
        pnl_pct=pnl_pct(position.category, position.size, position.avg_price, pnl),
        liq_price=position.liq_price,
        take_profit=position.take_profit,
        stop_loss=position.stop_loss,
        trailing_stop=position.trailing_stop,
        leverage=position.leverage,
        seq=position.seq,
        updated_ms=position.updated_ms,
        cause=cause,
        stale=stale,
        source=source,
    )
