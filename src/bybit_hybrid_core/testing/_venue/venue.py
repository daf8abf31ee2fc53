"""The Venue: Bybit's markets and one account, simulated behind the FakeExchange (sans-IO, deterministic).

Time enters only as `now` (float seconds since the start); exchange time is `start_ms + now * 1000`.
Randomness comes only from `Random(seed)` (and per-book `Random`s seeded from it), so the same seed and the
same calls give the same messages. Messages are JSON-ready dicts in Bybit's real shapes (BYBIT_V5.md §5-§6,
`shared/bybit-v5-samples/`).

Steps: the market moves in steps of `interval` seconds (0.1 s, Bybit's ticker cadence; books also step at
that rate, a documented simplification of the 20 ms level-50 cadence). `publish(now, ...)` runs every step
due since the last call. If `now` jumped by more than `max_catch_up` steps, the steps in between are merged
into one silent move (one Brownian jump of the same spread) and only the last `max_catch_up` steps produce
messages, so a long sleep never yields millions of messages; the deltas after it still carry every change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from random import Random
from typing import Any
from urllib.parse import unquote

from ..._errors import LocalProtocolError
from ..._events import Position, PositionKey
from .account import Account, OrderRejected
from .instruments import Instrument, default_instruments, make_instrument
from .public import PublicFeed
from .rows import Held, rest_row

__all__ = ["OrderRejected", "Venue"]

Json = dict[str, Any]
_REST_CATEGORIES = ("linear", "inverse", "option")


class Venue:
    """Markets (tickers, books, trades, klines, liquidations) and one account (positions, fills, wallet).

    Args:
        seed: seeds every random choice.
        start_ms: exchange wall time (ms) at `now == 0`.
        interval: seconds per market step (ticker deltas, book updates).
        max_catch_up: most steps that produce messages in one `publish` call.
        taker_fee: fee rate of every (market) fill.
    """

    def __init__(
        self,
        seed: int,
        start_ms: int,
        *,
        interval: float = 0.1,
        max_catch_up: int = 10,
        taker_fee: Decimal | str = "0.00055",
    ) -> None:
        if interval <= 0 or max_catch_up < 1:
            raise LocalProtocolError("interval must be positive and max_catch_up at least 1")
        self.start_ms = start_ms
        self._interval_ms = max(1, round(interval * 1000))
        self.max_catch_up = max_catch_up
        self._step = 0
        self._now_ms = start_ms
        self._feed = PublicFeed(seed, start_ms)
        self.account = Account(Random(f"{seed}:account"), Decimal(taker_fee), self._mark_of, self._usd)
        for inst in default_instruments(start_ms):
            self._feed.add(inst)

    # ------------------------------------------------------------------------------------ instruments

    def add_symbol(
        self,
        category: str,
        symbol: str,
        price: Decimal | str | int,
        *,
        tick: Decimal | str | None = None,
        qty_step: Decimal | str | None = None,
    ) -> None:
        """Quote one more symbol from `price` on (tick and qty step inferred from the price unless given)."""
        if (category, symbol) in self._feed.instruments:
            raise LocalProtocolError(f"{category} {symbol} is already listed")
        self._feed.add(make_instrument(category, symbol, price, tick=tick, qty_step=qty_step))

    def symbols(self, category: str) -> list[str]:
        """The listed symbols of `category`, in listing order."""
        return [s for c, s in self._feed.instruments if c == category]

    def instrument(self, category: str, symbol: str) -> Instrument:
        inst = self._feed.instruments.get((category, symbol))
        if inst is None:
            raise LocalProtocolError(
                f"{category} {symbol} is not listed: use one of {self.symbols(category)}"
            )
        return inst

    # ---------------------------------------------------------------------------------------- markets

    def topic_exists(self, category: str, topic: str) -> bool:
        """Whether `category`'s public stream delivers `topic` (False: "handler not found")."""
        return self._feed.parse(category, topic) is not None

    def snapshot(self, category: str, topic: str, now: float) -> Json | None:
        """The first message after subscribing to `topic` (tickers and books), or None (nothing is sent)."""
        self._seen(now)
        return self._feed.snapshot(category, topic)

    def publish(self, now: float, subscribed: Mapping[str, Collection[str]]) -> list[tuple[str, str, Json]]:
        """Every public push due up to `now` for the `subscribed` topics (category -> topics)."""
        self._seen(now)
        due = self._ms(now) // self._interval_ms
        out: list[tuple[str, str, Json]] = []
        if due - self._step > self.max_catch_up:
            skipped = due - self._step - self.max_catch_up
            self._step += skipped
            self._feed.jump(skipped, self._ts(self._step))
        while self._step < due:
            self._step += 1
            elapsed = self._step * self._interval_ms
            kline = elapsed // 1000 != (elapsed - self._interval_ms) // 1000  # once a second
            liq = elapsed // 500 != (elapsed - self._interval_ms) // 500  # allLiquidation: every 500 ms
            out += self._feed.step(self._ts(self._step), subscribed, kline=kline, liq=liq)
        return out

    def next_step_at(self) -> float:
        """The `now` at which `publish` next has something to do (for the exchange's deadline)."""
        return (self._step + 1) * self._interval_ms / 1000

    def restart(self, now: float) -> None:
        """A service restart: the next message of every book is a snapshot with u = 1, tickers re-snapshot."""
        self._seen(now)
        self._feed.restart()

    def set_mark(self, category: str, symbol: str, price: Decimal | str | int) -> None:
        """Move the mark (and index, last, top of book) to `price`; the next ticker delta shows it."""
        self.instrument(category, symbol)
        self._feed.market.set_mark(self._feed.quote(category, symbol), Decimal(price))

    def mark(self, category: str, symbol: str) -> Decimal:
        """The current mark price."""
        return self._mark_of(self.instrument(category, symbol))

    def _mark_of(self, inst: Instrument) -> Decimal:
        return inst.px(self._feed.quote(inst.category, inst.symbol).mark)

    def _usd(self, coin: str) -> Decimal:
        if coin in ("USDT", "USDC", "USD"):
            return Decimal(1)
        q = self._feed.market.quotes.get(("linear", f"{coin}USDT"))
        return q.inst.px(q.mark) if q is not None else Decimal(1)

    # --------------------------------------------------------------------------------------- trading

    def place_order(
        self,
        category: str,
        symbol: str,
        side: str,
        qty: Decimal | str | int,
        now: float,
        position_idx: int = 0,
        reduce_only: bool = False,
        *,
        order_link_id: str = "",
        price: Decimal | str | None = None,
    ) -> list[tuple[str, Json]]:
        """Fill a market order at once (at `price` if given, else the ask for Buy, the bid for Sell).

        Returns the private pushes (topic, message) in Bybit's order: execution.fast, order, execution,
        position (not for spot), wallet. Raises `OrderRejected` with Bybit's retCode/retMsg when Bybit would
        refuse the order (unknown symbol, wrong positionIdx for the mode, reduce-only with nothing to reduce).
        """
        self._seen(now)
        inst = self._feed.instruments.get((category, symbol))
        if inst is None:
            raise OrderRejected(10001, "params error: symbol invalid")
        want = Decimal(qty)
        fill_qty = self.account.check(inst, side, want, position_idx, reduce_only)
        q = self._feed.quote(category, symbol)
        at = (
            inst.px(inst.ticks(Decimal(price)))
            if price is not None
            else inst.px(q.ask if side == "Buy" else q.bid)
        )
        return self.account.fill(
            inst,
            side,
            fill_qty,
            at,
            position_idx,
            self._ms_abs(now),
            order_qty=fill_qty,
            last=inst.px(q.last),
            link_id=order_link_id,
            reduce_only=reduce_only,
        )

    def open_position(
        self,
        category: str,
        symbol: str,
        side: str,
        size: Decimal | str | int,
        now: float,
        price: Decimal | str | None = None,
        position_idx: int = 0,
    ) -> list[tuple[str, Json]]:
        """Open or grow a position with one market fill (at `price` if given); the private pushes."""
        return self.place_order(category, symbol, side, size, now, position_idx, price=price)

    def close_position(
        self,
        category: str,
        symbol: str,
        now: float,
        position_idx: int = 0,
        price: Decimal | str | None = None,
        qty: Decimal | str | None = None,
    ) -> list[tuple[str, Json]]:
        """Close the position (or `qty` of it) with a reduce-only market fill; [] if it is flat."""
        held = self.account.slots.get((category, symbol, position_idx))
        if held is None or held.size == 0:
            return []
        side = "Sell" if held.side == "Buy" else "Buy"
        amount = held.size if qty is None else Decimal(qty)
        return self.place_order(category, symbol, side, amount, now, position_idx, True, price=price)

    def set_hedge_mode(self, category: str, symbol: str, on: bool = True) -> None:
        """Switch `symbol` to hedge mode (idx 1 Buy leg, 2 Sell leg) or back to one-way (idx 0)."""
        self.account.set_hedge_mode(self.instrument(category, symbol), on)

    def liquidate(self, category: str, symbol: str, position_idx: int, now: float) -> list[tuple[str, Json]]:
        """Liquidate a position: a row with positionStatus "Liq", the takeover fill, the flat row, the wallet.

        Also queues the public allLiquidation row (side = the liquidated position's side).
        """
        self._seen(now)
        inst = self.instrument(category, symbol)
        pushes = self.account.liquidate((category, symbol, position_idx), self._ms_abs(now), self._last(inst))
        bust = next(m["data"][0] for topic, m in pushes if topic == "execution")
        liquidated = "Sell" if bust["side"] == "Buy" else "Buy"  # the takeover trades against the position
        self._feed.add_liquidation(
            category, symbol, (self._ms_abs(now), liquidated, bust["execQty"], bust["execPrice"])
        )
        return pushes

    def _last(self, inst: Instrument) -> Decimal:
        return inst.px(self._feed.quote(inst.category, inst.symbol).last)

    # -------------------------------------------------------------------------------------- positions

    def positions(self) -> dict[PositionKey, Position]:
        """The open positions, exactly as a client rebuilds them from the pushed rows."""
        return {
            PositionKey(h.inst.category, h.inst.symbol, h.idx): _position(h)
            for h in self.account.open_slots()
        }

    def rest_position_list(self, query: Mapping[str, str], now: float | None = None) -> Json:
        """The JSON body of GET /v5/position/list for `query` (docs/v5/position/position.mdx).

        `category` is required (linear, inverse, option); linear also needs `symbol` or `settleCoin`.
        `symbol` may list up to 10 symbols, comma-separated, and wins over `settleCoin`; `baseCoin` filters
        options. Pages hold `limit` rows (1..200, default 20); `nextPageCursor` is "" on the last page.
        Only open positions are listed.
        """
        if now is not None:
            self._seen(now)
        category = query.get("category", "")
        if category not in _REST_CATEGORIES:
            return self._rest_error("params error: Category is invalid")
        symbol, settle, base = query.get("symbol", ""), query.get("settleCoin", ""), query.get("baseCoin", "")
        if category == "linear" and not symbol and not settle:
            return self._rest_error("Missing some parameters that must be filled in, symbol or settleCoin")
        limit_text = query.get("limit", "20") or "20"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 200:
            return self._rest_error("params error: limit must be between 1 and 200")
        rows = [h for h in self.account.open_slots() if h.inst.category == category]
        if symbol:
            rows = [h for h in rows if h.inst.symbol in symbol.split(",")]
        elif settle:
            rows = [h for h in rows if h.inst.settle == settle]
        if base:
            rows = [h for h in rows if h.inst.base == base]
        start = _cursor_start(query.get("cursor", ""), rows)
        if start is None:
            return self._rest_error("params error: cursor is invalid")
        page = rows[start : start + int(limit_text)]
        more = rows[start + len(page) :]
        cursor = f"{more[0].inst.symbol}%3A{more[0].idx}" if more else ""
        listed = [rest_row(h, self._mark_of(h.inst), self.account.fee_rate) for h in page]
        result = {"list": listed, "nextPageCursor": cursor, "category": category}
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self._now_ms}

    def _rest_error(self, text: str) -> Json:
        return {"retCode": 10001, "retMsg": text, "result": {}, "retExtInfo": {}, "time": self._now_ms}

    # ------------------------------------------------------------------------------------------ time

    def _ms(self, now: float) -> int:
        return round(now * 1000)

    def _ms_abs(self, now: float) -> int:
        return self.start_ms + self._ms(now)

    def _ts(self, step: int) -> int:
        return self.start_ms + step * self._interval_ms

    def _seen(self, now: float) -> None:
        self._now_ms = max(self._now_ms, self._ms_abs(now))


def _position(h: Held) -> Position:
    # the values a client decodes from the row: "0" take-profit/stop-loss/trailing and "" liqPrice are unset
    return Position(
        category=h.inst.category,
        symbol=h.inst.symbol,
        position_idx=h.idx,
        side=h.side,
        size=h.size,
        avg_price=h.avg,
        leverage=h.leverage,
        liq_price=h.liq,
        position_status=h.status,
        seq=h.seq,
        updated_ms=h.updated_ms,
    )


def _cursor_start(cursor: str, rows: list[Held]) -> int | None:
    """Index of the first row at or after the cursor's (symbol, positionIdx); None for a malformed cursor."""
    if not cursor:
        return 0
    symbol, sep, idx = unquote(cursor).rpartition(":")
    if not sep or not symbol or not idx.isdigit():
        return None
    mark = (symbol, int(idx))
    return next((i for i, h in enumerate(rows) if (h.inst.symbol, h.idx) >= mark), len(rows))
