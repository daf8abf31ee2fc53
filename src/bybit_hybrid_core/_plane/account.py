"""Private account data: the position book and the one-event-per-row topics (BYBIT_V5.md section 6).

Positions are keyed by (category, symbol, positionIdx): 0 one-way, 1 hedge Buy leg, 2 hedge Sell leg. A row
is flat when `size == 0` or `side in ("", "None")` (UTA sends "", classic accounts "None"). `seq` is the
cross sequence of the last fill; setting changes (TP/SL, leverage) *reuse* it, so an update with the same
seq is newer news and is taken, while one with a lower seq than held is stale and ignored. The held seq is
kept after a position closes, so a late push cannot resurrect it. A position a REST snapshot closed is
*sealed*: its closing seq is unknown but above the held one, so only a higher seq can touch it again.

Never frozen (the "Never frozen" issue, item 3). One push whose seq is far ahead of the real ones would make
every genuine push after it look stale: all ignored, the position frozen. So the book counts, per key, the
stream pushes in a row with a lower seq than held (`older`); at `Timings.out_of_order_reset` the data plane
calls it a reset (`_hybrid.DataPlane`): it reports a `TopicReset(topic="position", remedy="snapshot")`,
`forget`s the held seq so that the stream and the REST snapshot it starts can speak again, and takes that
last push. Snapshot rows never count: a REST answer can lag the stream.

The book also counts a *generation*: every applied update that changes something stamps its key with the
next number (Bybit repeats unchanged positions whenever an order is placed; a repeat is not news). A REST
snapshot remembers the generation when it was requested, so the join can tell which positions the stream
touched after the request went out (those the snapshot cannot speak for).
"""

from __future__ import annotations

import enum
from decimal import Decimal

from .._codec import (
    ExecutionMessage,
    FastExecutionMessage,
    GreeksMessage,
    OrderMessage,
    PositionRow,
    WalletMessage,
)
from .._config import Link
from .._events import (
    Event,
    ExecutionUpdate,
    FastExecutionUpdate,
    GreeksUpdate,
    OrderUpdate,
    Position,
    PositionKey,
    WalletUpdate,
)

__all__ = [
    "POSITION_CATEGORIES",
    "Change",
    "OwnMark",
    "PositionBook",
    "RowMessage",
    "is_flat",
    "row_events",
    "to_position",
]

POSITION_CATEGORIES = frozenset({"linear", "inverse", "option"})
"""Categories that hold positions (spot has balances, not positions)."""

RowMessage = OrderMessage | ExecutionMessage | FastExecutionMessage | WalletMessage | GreeksMessage
"""The account topics other than position: one event per row."""

OwnMark = tuple[Decimal, int, float]
"""The position's own mark price, the exchange ms it was sampled at, and the `now` it arrived."""


def is_flat(position: Position) -> bool:
    return position.size == 0 or position.side in ("", "None")


def _unset_zero(value: Decimal | None) -> Decimal | None:
    """takeProfit, stopLoss, trailingStop and liqPrice say "0" when unset (section 6): that is None here."""
    return None if value is None or value == 0 else value


def to_position(category: str, row: PositionRow, avg_price: Decimal | None = None) -> Position:
    """The `Position` a row states. `avg_price` overrides `entryPrice` (REST rows call it `avgPrice`)."""
    avg = avg_price if avg_price is not None else row.entry_price
    return Position(
        category=category,
        symbol=row.symbol,
        position_idx=row.position_idx,
        side=row.side,
        size=row.size,
        avg_price=avg if avg is not None else Decimal(0),
        leverage=row.leverage,
        liq_price=_unset_zero(row.liq_price),
        take_profit=_unset_zero(row.take_profit),
        stop_loss=_unset_zero(row.stop_loss),
        trailing_stop=_unset_zero(row.trailing_stop),
        position_status=row.position_status,
        seq=row.seq,
        updated_ms=row.updated_time,
    )


class Change(enum.Enum):
    """What one position row did to the book."""

    IGNORED = "ignored"  # lower seq than held: stale
    FLAT = "flat"  # flat and was not open: nothing to say
    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


class PositionBook:
    """Open positions, the last seq seen per key (open or flat), and when each key was last touched."""

    __slots__ = ("_marks", "_older", "_open", "_sealed", "_seq", "_touched", "generation")

    def __init__(self) -> None:
        self._open: dict[PositionKey, Position] = {}
        self._seq: dict[PositionKey, int] = {}
        self._older: dict[PositionKey, int] = {}  # stream pushes in a row with a lower seq than held
        self._touched: dict[PositionKey, int] = {}
        self._marks: dict[PositionKey, OwnMark] = {}
        self._sealed: set[PositionKey] = set()
        self.generation = 0

    def apply(
        self, position: Position, mark: OwnMark | None, *, stream: bool = False
    ) -> tuple[Change, Position | None]:
        """Apply one stated position (seq rule); the change and the position held before.

        `stream`: the position came from a push, so a lower seq than held counts towards `older`.
        """
        key = position.key
        held_seq = self._seq.get(key)
        if held_seq is not None and position.seq < held_seq:
            if stream:
                self._older[key] = self._older.get(key, 0) + 1
            return Change.IGNORED, None
        if held_seq == position.seq and key in self._sealed:
            return Change.IGNORED, None
        self._older.pop(key, None)
        self._sealed.discard(key)
        self._seq[key] = position.seq
        before = self._open.get(key)
        if before != position:  # a repeat of the held state (an order was placed) says nothing new
            self.generation += 1
            self._touched[key] = self.generation
        if is_flat(position):
            if before is None:
                return Change.FLAT, None
            del self._open[key]
            self._marks.pop(key, None)
            return Change.CLOSED, before
        self._open[key] = position
        if mark is not None:
            self._marks[key] = mark
        return (Change.OPENED if before is None else Change.UPDATED), before

    def close(self, key: PositionKey) -> Position:
        """Close a held position that a snapshot no longer lists: sealed at its seq (see the module doc)."""
        position = self._open.pop(key)  # KeyError: the key is not open (the caller's bug)
        self._marks.pop(key, None)
        self.generation += 1
        self._touched[key] = self.generation
        self._sealed.add(key)
        return position

    def seq(self, key: PositionKey) -> int | None:
        return self._seq.get(key)

    def older(self, key: PositionKey) -> int:
        """How many stream pushes in a row had a lower seq than the one held for `key`."""
        return self._older.get(key, 0)

    def forget(self, key: PositionKey) -> None:
        """Forget the held seq of `key` (a reset: it is suspect): the next statement of it is taken."""
        self._seq.pop(key, None)
        self._older.pop(key, None)
        self._sealed.discard(key)

    def touched(self, key: PositionKey) -> int:
        """The generation of the last update applied to `key` (0: never)."""
        return self._touched.get(key, 0)

    def get(self, key: PositionKey) -> Position | None:
        return self._open.get(key)

    def own_mark(self, key: PositionKey) -> OwnMark | None:
        return self._marks.get(key)

    def open_positions(self) -> dict[PositionKey, Position]:
        return dict(self._open)

    def open_keys(self, category: str) -> list[PositionKey]:
        return [key for key in self._open if key[0] == category]


def row_events(link: Link, msg: RowMessage, now: float) -> list[Event]:
    """One event per row of the account topics other than position."""
    if isinstance(msg, OrderMessage):
        return [OrderUpdate(link=link, at=now, order=row) for row in msg.data]
    if isinstance(msg, ExecutionMessage):
        return [ExecutionUpdate(link=link, at=now, execution=row) for row in msg.data]
    if isinstance(msg, FastExecutionMessage):
        return [FastExecutionUpdate(link=link, at=now, execution=fast) for fast in msg.data]
    if isinstance(msg, WalletMessage):
        return [WalletUpdate(link=link, at=now, wallet=row) for row in msg.data]
    return [GreeksUpdate(link=link, at=now, greeks=row) for row in msg.data]
