"""The bounded, order-preserving event queue between an adapter's loop and the application.

The loop never waits for the application (it must keep answering pings), so the queue cannot push back.
Instead, once `limit` events are pending, a new *market* event replaces the pending one with the same key
and moves to the back (so order is kept: nothing older overtakes something newer):

* `TickerUpdate` per (category, symbol): the ticker it carries is already merged, the newest says it all;
* `OrderbookUpdate` per (category, symbol, depth): the level changes are merged, so nothing is lost;
* `PublicTrades`, `KlineUpdate`, `Liquidations` per topic: concatenated, the newest `TAIL` kept;
* `PositionUpdate` with `cause == "mark"` per position key: a newer mark supersedes an older one.

Everything else (position, order, execution, wallet, link and error events) is never dropped. Market data is
therefore bounded by the number of keys, and a slow consumer cannot grow memory without bound. The merge
itself waits until the application drains (or `GROUP` events of one key pile up): done at every arrival it
cost the loop ~14 µs an event, ~1.5 µs so.
Not thread-safe: the threaded adapter's `Mailbox` guards it with a lock; the async adapters' `AsyncMailbox`
lives on their event loop.

`_inbox.Inbox` is the other direction: what the async adapters' readers, fetches and commands post to their
loop.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from decimal import Decimal

import msgspec

from bybit_hybrid_core import (
    Event,
    KlineUpdate,
    Level,
    Liquidations,
    OrderbookUpdate,
    PositionUpdate,
    PublicTrades,
    TickerUpdate,
)

from ._inbox import Signal

__all__ = ["TAIL", "AsyncMailbox", "CallbackFailed", "EventBuffer", "Mailbox", "conflation_key"]

log = logging.getLogger("bybit_hybrid")

TAIL = 1000
"""How many trades, candles or liquidations a conflated event keeps (the newest)."""


class CallbackFailed(Event, frozen=True):
    """The application's callback raised while handling `event` (a type name); the stream went on.

    `link` and `at` are those of the event being handled; `error` is the exception's type and message.
    """

    error: str
    event: str


def conflation_key(event: Event) -> Hashable | None:
    """The key under which `event` may replace an older pending one; None: never dropped or merged."""
    match event:
        case TickerUpdate(category=category, symbol=symbol):
            return ("ticker", category, symbol)
        case OrderbookUpdate(category=category, symbol=symbol, depth=depth):
            return ("orderbook", category, symbol, depth)
        case PublicTrades(category=category, topic=topic) | KlineUpdate(category=category, topic=topic):
            return (type(event).__name__, category, topic)
        case Liquidations(category=category, topic=topic):
            return ("liquidations", category, topic)
        case PositionUpdate(cause="mark"):
            return ("mark", event.key)
    return None


def _levels(
    old: tuple[Level, ...], new: tuple[Level, ...], descending: bool, keep_zero: bool
) -> tuple[Level, ...]:
    book: dict[Decimal, Decimal] = dict(old)
    book.update(new)
    return tuple(sorted(((p, s) for p, s in book.items() if keep_zero or s), reverse=descending))


def _merge(old: Event, new: Event) -> Event:
    replace = msgspec.structs.replace
    match old, new:
        case OrderbookUpdate(), OrderbookUpdate(snapshot=False):
            # Applying the merged changes gives the same book as applying both, so no level is lost;
            # a snapshot followed by deltas stays a snapshot (without removed levels).
            zeros = not old.snapshot
            bids = _levels(old.bids, new.bids, descending=True, keep_zero=zeros)
            asks = _levels(old.asks, new.asks, descending=False, keep_zero=zeros)
            return replace(new, bids=bids, asks=asks, snapshot=old.snapshot)
        case TickerUpdate(), TickerUpdate():
            return replace(new, snapshot=old.snapshot or new.snapshot)
        case PublicTrades(), PublicTrades():
            return replace(new, trades=(old.trades + new.trades)[-TAIL:])
        case KlineUpdate(), KlineUpdate():
            return replace(new, candles=(old.candles + new.candles)[-TAIL:])
        case Liquidations(), Liquidations():
            return replace(new, liquidations=(old.liquidations + new.liquidations)[-TAIL:])
    return new


GROUP = 64
"""How many conflated events one key holds before they are merged into one (see `_Group`)."""


class _Group:
    """The pending market events of one conflation key, oldest first, merged when drained (or once `GROUP`
    pile up, which keeps memory bounded): merging at every arrival would re-sort a book or re-copy up to
    `TAIL` trades each time, on the loop, at the very moment the application is behind."""

    __slots__ = ("events",)

    def __init__(self, older: Event | _Group, event: Event) -> None:
        self.events: list[Event] = [*older.events, event] if isinstance(older, _Group) else [older, event]
        if len(self.events) >= GROUP:
            self.events = [_fold(self.events)]

    def event(self) -> Event:
        return _fold(self.events) if len(self.events) > 1 else self.events[0]


_TAILS = {PublicTrades: "trades", KlineUpdate: "candles", Liquidations: "liquidations"}


def _fold(events: list[Event]) -> Event:
    """`functools.reduce(_merge, events)` (events of one key), in one pass: one sort per book side, one
    concatenation per tail."""
    last = events[-1]
    replace = msgspec.structs.replace
    if isinstance(last, OrderbookUpdate):
        books: list[OrderbookUpdate] = events  # type: ignore[assignment]  # one key: one type
        start = max((i for i, e in enumerate(books) if e.snapshot), default=0)  # a snapshot starts afresh
        base, deltas = books[start], books[start + 1 :]
        if not deltas:
            return base
        bids, asks = dict(base.bids), dict(base.asks)
        for delta in deltas:
            bids.update(delta.bids)
            asks.update(delta.asks)
        zeros = not base.snapshot  # deltas keep their removals; a snapshot has none
        return replace(
            last, snapshot=base.snapshot,
            bids=tuple(sorted(((p, q) for p, q in bids.items() if zeros or q), reverse=True)),
            asks=tuple(sorted((p, q) for p, q in asks.items() if zeros or q)),
        )  # fmt: skip
    field = _TAILS.get(type(last))
    if field is not None:
        rows = tuple(row for e in events for row in getattr(e, field))
        return replace(last, **{field: rows[-TAIL:]})
    if isinstance(last, TickerUpdate):
        return replace(last, snapshot=any(e.snapshot for e in events))  # type: ignore[attr-defined]
    return functools.reduce(_merge, events)


class EventBuffer:
    """Pending events in arrival order; see the module docstring for what happens past `limit`.

    Conflation keys are only worked out once `limit` is reached: below it (a consumer that keeps up, nearly
    always) a batch is stored in one C-level update and drained as one list, with no key per event. The
    first event at the limit keys every pending one, oldest first, which finds the same older event per key
    as keying each on arrival would; from then until the next drain every event is keyed as it comes.
    """

    __slots__ = ("_grouped", "_items", "_keyed", "_keys", "_seq", "conflated", "high_water", "limit")

    def __init__(self, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.conflated = 0  # market events merged into a newer one since the start
        self.high_water = 0  # the most events ever pending at once
        self._items: dict[int, Event | _Group] = {}  # insertion-ordered; deleting from the middle is O(1)
        self._keys: dict[Hashable, int] = {}  # key -> the newest pending event's seq (while `_keyed`)
        self._keyed = False  # `_keys` covers every pending event
        self._grouped = False  # some pending item is a `_Group`
        self._seq = 0

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def put(self, event: Event) -> None:
        items = self._items
        if len(items) < self.limit and not self._keyed:
            items[self._seq] = event  # below the limit nothing is merged: no key needed yet
            self._seq += 1
            self.high_water = max(self.high_water, len(items))
            return
        if not self._keyed:
            self._key_pending()
        key = conflation_key(event)
        if key is not None:
            older = self._keys.get(key)
            if older is not None and len(items) >= self.limit:
                items[self._seq] = _Group(items.pop(older), event)  # merged when drained
                self._grouped = True
                self.conflated += 1
                self._keys[key] = self._seq
                self._seq += 1
                return
            self._keys[key] = self._seq
        items[self._seq] = event
        self._seq += 1
        self.high_water = max(self.high_water, len(items))

    def extend(self, events: Iterable[Event]) -> None:
        batch = events if isinstance(events, list | tuple) else list(events)
        items = self._items
        if not self._keyed and len(items) + len(batch) < self.limit:  # the common case, in C
            items.update(zip(itertools.count(self._seq), batch))
            self._seq += len(batch)
            self.high_water = max(self.high_water, len(items))
            return
        for event in batch:
            self.put(event)

    def drain(self) -> list[Event]:
        """Everything pending, oldest first; the buffer is empty afterwards."""
        values = self._items.values()
        if self._grouped:
            items = [item.event() if isinstance(item, _Group) else item for item in values]
        else:
            items = list(values)  # type: ignore[arg-type]  # no group pending: every item is an Event
        self._items.clear()
        self._keys.clear()
        self._keyed = self._grouped = False
        return items

    def _key_pending(self) -> None:
        """Key every pending event (no group is pending before the first key: groups need keys)."""
        keys = self._keys
        for seq, item in self._items.items():
            key = conflation_key(item)  # type: ignore[arg-type]
            if key is not None:
                keys[key] = seq
        self._keyed = True


class Mailbox:
    """An `EventBuffer` shared between threads: the loop `put`s batches, consumers wait in `next_batch`, and
    `dispatch` feeds a callback (the threaded adapter's). Its condition also guards the adapter's inbox."""

    def __init__(self, limit: int) -> None:
        self.buffer = EventBuffer(limit)
        self.cond = threading.Condition()
        self.closed = False
        self.failure: BaseException | None = None

    def __len__(self) -> int:
        with self.cond:
            return len(self.buffer)

    def put(self, events: Iterable[Event]) -> None:
        with self.cond:
            self.buffer.extend(events)
            self.cond.notify_all()

    def close(self, failure: BaseException | None = None) -> None:
        with self.cond:
            self.closed, self.failure = True, failure
            self.cond.notify_all()

    def next_batch(self, timeout: float | None = None) -> list[Event]:
        """Every pending event, oldest first; waits up to `timeout` for one. [] on timeout or once closed;
        raises what stopped the loop if it failed."""
        with self.cond:
            self.cond.wait_for(lambda: self.buffer or self.closed, timeout)
            if self.buffer:
                return self.buffer.drain()
            if self.failure is not None:
                raise self.failure
            return []

    def dispatch(self, on_event: Callable[[Event], object]) -> None:
        """Call `on_event` for every event until closed. What it raises is logged and reported once as a
        `CallbackFailed` event; the stream goes on."""
        while batch := self.next_batch():
            for event in batch:
                try:
                    on_event(event)
                except Exception as exc:
                    log.exception("on_event raised on %s; the stream goes on", type(event).__name__)
                    if not isinstance(event, CallbackFailed):  # never a loop of reports
                        error = f"{type(exc).__name__}: {exc}"[:200]
                        self.put(
                            [
                                CallbackFailed(
                                    link=event.link, at=event.at, error=error, event=type(event).__name__
                                )
                            ]
                        )


class AsyncMailbox:
    """The async adapters' `Mailbox`: an `EventBuffer` on one event loop, which the adapter's loop fills and
    the application drains with `next_batch` or `next_event` (its `async for`).

    Args:
        limit: the buffer's `limit` (`max_pending`).
        signal: makes the event a waiting consumer sleeps on (`asyncio.Event`, `anyio.Event`); called on the
            event loop only, since anyio needs a running backend.
    """

    __slots__ = ("_batch", "_ready", "_signal", "buffer", "closed", "failure")

    def __init__(self, limit: int, signal: Callable[[], Signal]) -> None:
        self.buffer = EventBuffer(limit)
        self.closed = False
        self.failure: BaseException | None = None
        self._signal = signal
        self._ready: Signal | None = None  # the consumer's, while it waits
        self._batch: deque[Event] = deque()  # drained but not yet handed out by next_event

    def __len__(self) -> int:
        return len(self.buffer)

    def put(self, events: Iterable[Event]) -> None:
        self.buffer.extend(events)
        self._wake()

    def close(self, failure: BaseException | None = None) -> None:
        """No more events come; `failure` (what stopped the loop) is raised to the consumer once drained."""
        self.closed, self.failure = True, failure
        self._wake()

    async def next_batch(self) -> list[Event]:
        """Every pending event, oldest first; waits for at least one. [] once closed; raises what stopped the
        loop if it failed."""
        while not self.buffer:
            if self.failure is not None:
                raise self.failure
            if self.closed:
                return []
            self._ready = self._signal()  # a fresh one each time: anyio's events cannot be cleared
            await self._ready.wait()
        return self.buffer.drain()

    async def next_event(self) -> Event:
        """The next event, for `__anext__`: raises StopAsyncIteration once closed and drained."""
        while not self._batch:
            batch = await self.next_batch()
            if not batch:
                raise StopAsyncIteration
            self._batch.extend(batch)
        return self._batch.popleft()

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready.set()
