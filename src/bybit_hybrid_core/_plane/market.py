"""Public market data: merged tickers, order books, and the pass-through topics (BYBIT_V5.md section 5).

Tickers. Linear and inverse send a snapshot, then deltas that carry only the changed fields ("if a response
param is not found in the message, then its value has not changed"); `""` is a value ("not applicable",
decoded as None), not "unchanged", so it overwrites. Spot and option tickers are snapshot-only: every
message replaces the state. Messages are ordered by `(cs, ts)` (by `ts` alone when either lacks `cs`, as
options do); an older delta is ignored, and an older snapshot too unless the symbol awaits one or was just
(re)subscribed (the subscription's snapshot is taken whatever its `cs`). A delta before
any snapshot is reported and fabricates nothing. After the link goes down every ticker it fed awaits its new
snapshot: deltas are ignored until it arrives, and the join calls the mark stale meanwhile.

Never frozen (the "Never frozen" issue, item 3). One message whose `cs` is far ahead of the real ones would
make every genuine message after it look older: all dropped, the mark frozen. So `Timings.out_of_order_reset`
messages in a row older than the state held are a *reset*: the held order is the suspect, not the stream.
The symbol then awaits a snapshot (its mark is stale), and the plane asks the core to resubscribe
`tickers.{symbol}` on the link the messages came from; the core reports that as a
`TopicReset(remedy="resubscribe")` with our reason, and Bybit answers every subscribe with a snapshot,
which is taken whatever its `cs`. One request per reset: the old messages still in flight are ignored
without asking again. While a symbol awaits a snapshot (none yet, after a reset or after its link went
down) the first ignored delta is reported and the others are not, and if deltas keep coming but no
snapshot does for `Timings.topic_quiet_after`, the topic is resubscribed again: the links' watchdog sees
pushes arriving, only the data plane knows that none is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from msgspec import UNSET, structs

from .._codec import TickerData, TickerMessage
from .._config import Link, Timings
from .._events import Event, ProtocolProblem, TickerUpdate
from .books import Book, Orderbooks, Resubscribe, Wait

__all__ = ["Market", "TickerState", "Tickers"]

_SNAPSHOT_ONLY = frozenset({"spot", "option"})
_FIELDS = TickerData.__struct_fields__


class TickerState:
    """One symbol's merged ticker, where its mark price came from, and the link its last message came from."""

    __slots__ = (
        "awaiting_snapshot",
        "cs",
        "data",
        "fresh",
        "last_at",
        "link",
        "mark",
        "mark_at",
        "mark_ts",
        "older",
        "ts",
    )

    def __init__(self, link: Link, data: TickerData, ts: int, cs: int | None, now: float) -> None:
        self.link = link
        self.data = data
        self.ts = ts
        self.cs = cs
        self.last_at = now  # when a message for the symbol was last accepted (monotonic `now`)
        self.awaiting_snapshot = False
        self.fresh = False  # (re)subscribed: the next snapshot is the subscription's, taken whatever its cs
        self.older = 0  # messages in a row older than the state held
        self.mark: Decimal | None = None
        self.mark_ts: int | None = None  # exchange ms of the message that carried the current mark
        self.mark_at: float | None = None  # `now` when that message arrived


class Tickers:
    """Ticker state per (category, symbol), and the symbols awaiting a snapshot."""

    __slots__ = ("_limit", "_quiet", "_resubscribe", "_state", "_waits")

    def __init__(self, timings: Timings, resubscribe: Resubscribe) -> None:
        self._state: dict[tuple[str, str], TickerState] = {}
        self._waits: dict[tuple[str, str], Wait] = {}  # a symbol with no state yet, or awaiting_snapshot
        self._limit = timings.out_of_order_reset
        self._quiet = timings.topic_quiet_after
        self._resubscribe = resubscribe

    def apply(self, link: Link, msg: TickerMessage, now: float) -> tuple[Event | None, TickerState | None]:
        """Apply one message: the event to emit (update or problem) and the state when what the join shows
        may have changed (the message was taken, or it made a reset: the mark goes stale); else None."""
        data = msg.data
        category = link.category
        key = (category, data.symbol)
        state = self._state.get(key)
        snapshot = msg.type == "snapshot" or category in _SNAPSHOT_ONLY
        if state is None or state.awaiting_snapshot or (snapshot and state.fresh):
            if not snapshot:
                return self._rejected(link, msg, key, state is None, now), None
            self._waits.pop(key, None)
            state = self._state[key] = TickerState(link, data, msg.ts, msg.cs, now)
        elif _older(msg, state):
            state.older += 1
            if state.older < self._limit:
                return None, None  # late or duplicate, so far
            self._reset(link, msg, key, state, now)
            return None, state
        else:
            state.data = data if snapshot else _merge(state.data, data)
            state.ts, state.last_at, state.link, state.older = msg.ts, now, link, 0
            if msg.cs is not None:
                state.cs = msg.cs
        mark = data.mark_price
        if mark is not UNSET or snapshot:  # a delta without markPrice leaves the mark (and its object) alone
            state.mark = mark if isinstance(mark, Decimal) else None
            state.mark_ts, state.mark_at = msg.ts, now
        event = TickerUpdate(
            link=link,
            at=now,
            category=category,
            symbol=data.symbol,
            ticker=state.data,
            snapshot=snapshot,
            ts=msg.ts,
            cs=msg.cs,
        )
        return event, state

    def link_down(self, link: Link) -> list[str]:
        """Every ticker `link` fed awaits a snapshot (the new subscription's); the symbols affected."""
        symbols = []
        for key, state in self._state.items():
            if state.link is link:
                state.awaiting_snapshot = True
                self._waits[key] = Wait(link)
                symbols.append(key[1])
        for key in [key for key, wait in self._waits.items() if wait.link is link and key not in self._state]:
            del self._waits[key]  # deltas before any snapshot: the new connection starts a new wait
        return symbols

    def subscribed(self, link: Link, symbol: str) -> None:
        """`tickers.{symbol}` was (re)subscribed on `link`: its snapshot comes next and is taken whatever its
        cs (a held state from an earlier subscription may hold a poisoned one). Deltas are not held back:
        the ack and the first push may arrive in either order."""
        state = self._state.get((link.category, symbol))
        if state is not None:
            state.fresh = True

    def get(self, category: str, symbol: str) -> TickerState | None:
        return self._state.get((category, symbol))

    def _reset(
        self, link: Link, msg: TickerMessage, key: tuple[str, str], state: TickerState, now: float
    ) -> None:
        """The held order is poisoned: await a snapshot whatever its `cs`, and ask for one (once)."""
        held = f"cs={state.cs}, ts={state.ts}" if state.cs is not None else f"ts={state.ts}"
        last = f"cs={msg.cs}, ts={msg.ts}" if msg.cs is not None else f"ts={msg.ts}"
        reason = f"{state.older} messages in a row older than the state held ({held}; the last: {last})"
        state.awaiting_snapshot, state.older = True, 0
        self._waits[key] = Wait(link, since=now, reported=True)  # the TopicReset reports this wait
        self._resubscribe(link, msg.topic, reason)

    def _rejected(
        self, link: Link, msg: TickerMessage, key: tuple[str, str], first: bool, now: float
    ) -> ProtocolProblem | None:
        """A delta while awaiting a snapshot: reported once per wait; resubscribed if no snapshot comes."""
        wait = self._waits.get(key)
        if wait is None:
            wait = self._waits[key] = Wait(link)
        report, ask = wait.rejected(now, self._quiet)
        if ask:
            self._resubscribe(link, msg.topic, f"deltas for {self._quiet:g} s but no snapshot")
        if not report:
            return None
        which = "any snapshot" if first else "the new snapshot"
        detail = f"{msg.topic}: delta before {which} ignored (and so are the next ones until it arrives)"
        return ProtocolProblem(link=link, at=now, detail=detail)


def _older(msg: TickerMessage, state: TickerState) -> bool:
    cs, held = msg.cs, state.cs
    if cs is not None and held is not None:
        return cs < held or (cs == held and msg.ts < state.ts)  # (cs, ts) order, without two tuples
    return msg.ts < state.ts


def _merger() -> Callable[[TickerData, TickerData], TickerData]:
    """Generate `_merge(held, delta)`: one `is not UNSET` test per field, unrolled.

    A delta carries a handful of TickerData's fields and this runs for every ticker delta
    (docs/performance.md). Unrolled attribute reads collect the changed fields into a small dict for
    `msgspec.structs.replace`; on the bench stream that is about half the time of zipping `astuple(delta)`
    with the field names in a comprehension, and faster than unpacking `astuple` into locals or calling
    the constructor with all 49 fields. Generated from `__struct_fields__`, so a new field is merged too.
    `symbol` is skipped: the held state is the same symbol's.
    """
    lines = ["def _merge(held, delta):", "    changed = {}"]
    for name in _FIELDS:
        if name != "symbol":
            lines += [f"    value = delta.{name}", "    if value is not UNSET:"]
            lines.append(f"        changed[{name!r}] = value")
    lines.append("    return replace(held, **changed) if changed else held")
    namespace: dict[str, object] = {"UNSET": UNSET, "replace": structs.replace}
    exec("\n".join(lines), namespace)  # our own text, from the Struct's field names only
    merge: Callable[[TickerData, TickerData], TickerData] = namespace["_merge"]  # type: ignore[assignment]
    return merge


_merge = _merger()


class Market:
    """The public market state: tickers and books (the pass-through topics hold none: `DataPlane`)."""

    __slots__ = ("books", "tickers")

    def __init__(self, timings: Timings, resubscribe: Resubscribe) -> None:
        self.tickers = Tickers(timings, resubscribe)
        self.books = Orderbooks(timings, resubscribe)

    def link_down(self, link: Link) -> list[str]:
        """`link` went down: its books are dropped, its tickers await snapshots; the symbols of those."""
        self.books.link_down(link)
        return self.tickers.link_down(link)

    def book(self, category: str, symbol: str, depth: int | None) -> Book | None:
        return self.books.get(category, symbol, depth)

    def ticker(self, symbol: str, category: str | None) -> TickerData | None:
        for cat in (category,) if category is not None else ("linear", "inverse", "option", "spot"):
            state = self.tickers.get(cat, symbol)
            if state is not None:
                return state.data
        return None


Emit = Callable[[Event], None]
