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
from .account import Account, OrderRejected, Resting, Stops, _liq_price
from .instruments import Instrument, default_instruments, fmt, make_instrument, uuid_like
from .public import PublicFeed
from .rows import Held, rest_row

__all__ = ["OrderRejected", "Venue"]

Json = dict[str, Any]
Push = tuple[str, Json]
_TIFS = ("GTC", "IOC", "FOK", "PostOnly")
_STOP_KINDS = {  # what closes a position when its stop triggers: stopOrderType, createType
    "take_profit": ("TakeProfit", "CreateByTakeProfit"),
    "stop_loss": ("StopLoss", "CreateByStopLoss"),
    "trailing": ("TrailingStop", "CreateByTrailingStop"),
}
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
        self._private: list[Push] = []  # fills the mark triggered (limit orders, stops), for take_private
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
            if self.account.orders or self.account.stops:
                self._private += self._triggers(self._ts(self._step))
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
        if self.account.orders or self.account.stops:
            self._private += self._triggers(self._now_ms)

    def mark(self, category: str, symbol: str) -> Decimal:
        """The current mark price."""
        return self._mark_of(self.instrument(category, symbol))

    def ticker(self, category: str, symbol: str) -> dict[str, str]:
        """The ticker of `symbol` as it stands now, read-only (for GET /v5/market/tickers): every field of the
        category's stream ticker, plus the top of book as `bid1Price`/`bid1Size`/`ask1Price`/`ask1Size`, which
        spot's and option's streams name otherwise or lack."""
        inst = self.instrument(category, symbol)
        q = self._feed.quote(category, symbol)
        top = {
            "bid1Price": str(inst.px(q.bid)),
            "bid1Size": inst.qty(q.bid_size),
            "ask1Price": str(inst.px(q.ask)),
            "ask1Size": inst.qty(q.ask_size),
        }
        return {**self._feed.market.ticker_fields(q), **top}

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

    # ------------------------------------------------------------------------- orders, stops, leverage

    def take_private(self) -> list[Push]:
        """The private pushes of fills the mark triggered since the last call (resting limits, stops)."""
        out, self._private = self._private, []
        return out

    def create_order(
        self,
        category: str,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        now: float,
        *,
        price: Decimal | None = None,
        position_idx: int = 0,
        reduce_only: bool = False,
        link_id: str = "",
        time_in_force: str = "",
    ) -> tuple[str, list[Push]]:
        """Place a Market or Limit order (POST /v5/order/create); returns its orderId and the pushes.

        A market order fills at once. A limit order that crosses the book fills at once at the touch (a
        PostOnly one is cancelled instead); otherwise it rests (an IOC/FOK one is cancelled) and fills at its
        price when the mark reaches it. Raises `OrderRejected` with Bybit's code and text.
        """
        self._seen(now)
        now_ms = self._ms_abs(now)
        inst = self._feed.instruments.get((category, symbol))
        if inst is None:
            raise OrderRejected(10001, "params error: symbol invalid")
        if link_id and any(o.link_id == link_id for o in self.account.orders.values()):
            raise OrderRejected(110072, "OrderLinkedID is duplicate")
        if order_type == "Market":
            pushes = self.place_order(
                category, symbol, side, qty, now, position_idx, reduce_only, order_link_id=link_id
            )
            oid = next(m["data"][0]["orderId"] for t, m in pushes if t == "order")
            return oid, pushes
        if order_type != "Limit":
            raise OrderRejected(10001, f"params error: orderType invalid: {order_type}")
        tif = time_in_force or "GTC"
        if tif not in _TIFS:
            raise OrderRejected(10001, f"params error: timeInForce invalid: {tif}")
        if price is None or not price.is_finite() or price <= 0:
            raise OrderRejected(10001, "params error: price is required for a limit order")
        if inst.px(inst.ticks(price)) != price:
            raise OrderRejected(10001, f"params error: price must be a multiple of the tick {inst.tick}")
        self.account.check(inst, side, qty, position_idx, reduce_only)
        q = self._feed.quote(category, symbol)
        o = Resting(uuid_like(self.account._rng), link_id, inst, side, qty, price, position_idx,
                    reduce_only, tif, now_ms, now_ms, inst.px(q.last))  # fmt: skip
        touch = inst.px(q.ask if side == "Buy" else q.bid)
        crosses = price >= touch if side == "Buy" else price <= touch
        if crosses and tif != "PostOnly":
            return o.order_id, self._fill_resting(o, touch, now_ms)
        if crosses or tif in ("IOC", "FOK"):
            row = self.account.resting_row(o, "Cancelled", now_ms, "CancelByUser")
            if crosses:
                row["rejectReason"] = "EC_PostOnlyWillTakeLiquidity"
            self.account.closed[o.order_id] = row
            return o.order_id, [self.account.order_push(row, now_ms)]
        self.account.orders[o.order_id] = o
        return o.order_id, [self.account.order_push(self.account.resting_row(o, "New", now_ms), now_ms)]

    def find_order(self, category: str, symbol: str, order_id: str = "", link_id: str = "") -> Resting:
        """The open order with `order_id` (or `link_id`); `OrderRejected` 110001 if there is none."""
        for o in self.account.orders.values():
            if (o.inst.category, o.inst.symbol) != (category, symbol):
                continue
            if (order_id and o.order_id == order_id) or (not order_id and link_id and o.link_id == link_id):
                return o
        raise OrderRejected(110001, "order not exists or too late to cancel")

    def amend_order(
        self,
        category: str,
        symbol: str,
        now: float,
        *,
        order_id: str = "",
        link_id: str = "",
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> tuple[Resting, list[Push]]:
        """Change an open limit order's qty and/or price (POST /v5/order/amend); pushes its New row."""
        self._seen(now)
        now_ms = self._ms_abs(now)
        o = self.find_order(category, symbol, order_id, link_id)
        if qty is None and price is None:
            raise OrderRejected(10001, "params error: nothing to amend (qty or price)")
        if qty is not None and (not qty.is_finite() or qty <= 0):
            raise OrderRejected(10001, "params error: qty must be greater than zero")
        if price is not None and (
            not price.is_finite() or price <= 0 or o.inst.px(o.inst.ticks(price)) != price
        ):
            raise OrderRejected(10001, "params error: price invalid")
        if (qty is None or qty == o.qty) and (price is None or price == o.price):
            raise OrderRejected(110025, "Noting to modify")  # sic: Bybit's own spelling (error.mdx)
        o.qty = o.qty if qty is None else qty
        o.price = o.price if price is None else price
        o.updated_ms = now_ms
        pushes = [self.account.order_push(self.account.resting_row(o, "New", now_ms), now_ms)]
        pushes += self._triggers(now_ms, only=o.inst)
        return o, pushes

    def cancel_order(
        self, category: str, symbol: str, now: float, *, order_id: str = "", link_id: str = ""
    ) -> tuple[Resting, list[Push]]:
        """Cancel an open order (POST /v5/order/cancel); pushes its Cancelled row."""
        self._seen(now)
        o = self.find_order(category, symbol, order_id, link_id)
        return o, [self._cancel(o, self._ms_abs(now), "CancelByUser")]

    def cancel_all(
        self, category: str, now: float, *, symbol: str = "", base: str = "", settle: str = ""
    ) -> tuple[list[Resting], list[Push]]:
        """Cancel every open order of `category` (and `symbol` / `base` coin / `settle` coin if given)."""
        self._seen(now)
        now_ms = self._ms_abs(now)
        chosen = self.open_orders(category, symbol=symbol, base=base, settle=settle)
        return chosen, [self._cancel(o, now_ms, "CancelByUser") for o in chosen]

    def open_orders(
        self, category: str, *, symbol: str = "", base: str = "", settle: str = "", order_id: str = "",
        link_id: str = "",
    ) -> list[Resting]:  # fmt: skip
        """Open orders, newest first (GET /v5/order/realtime), filtered like Bybit's query."""
        rows = [o for o in self.account.orders.values() if o.inst.category == category]
        if symbol:
            rows = [o for o in rows if o.inst.symbol == symbol]
        if base:
            rows = [o for o in rows if o.inst.base == base]
        if settle:
            rows = [o for o in rows if o.inst.settle == settle]
        if order_id:
            rows = [o for o in rows if o.order_id == order_id]
        if link_id:
            rows = [o for o in rows if o.link_id == link_id]
        return rows[::-1]

    def order_rows(self, orders: list[Resting], now: float) -> list[Json]:
        """The REST rows of open orders (status New)."""
        return [self.account.resting_row(o, "New", o.updated_ms) for o in orders]

    def set_trading_stop(
        self,
        category: str,
        symbol: str,
        now: float,
        *,
        position_idx: int = 0,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        trailing: Decimal | None = None,
    ) -> list[Push]:
        """Set (0: cancel) a position's take profit, stop loss and trailing stop distance (POST
        /v5/position/trading-stop, tpslMode Full); pushes the position row. The mark triggers them."""
        self._seen(now)
        inst = self._feed.instruments.get((category, symbol))
        if inst is None or category not in ("linear", "inverse"):
            raise OrderRejected(10001, "params error: symbol invalid")
        key = (category, symbol, position_idx)
        held = self.account.slots.get(key)
        if held is None or held.size == 0:
            raise OrderRejected(10001, "can not set tp/sl/ts for zero position")
        mark, long = self._mark_of(inst), held.side == "Buy"
        if take_profit and (take_profit <= mark if long else take_profit >= mark):
            word = "higher" if long else "lower"
            raise OrderRejected(
                10001, f"TakeProfit:{fmt(take_profit)} set for {held.side} position should be {word} than "
                f"base_price:{mark}??MarkPrice"
            )  # fmt: skip
        if stop_loss and (stop_loss >= mark if long else stop_loss <= mark):
            word = "lower" if long else "higher"
            raise OrderRejected(
                10001, f"StopLoss:{fmt(stop_loss)} set for {held.side} position should be {word} than "
                f"base_price:{mark}??MarkPrice"
            )  # fmt: skip
        for value in (take_profit, stop_loss, trailing):
            if value is not None and (not value.is_finite() or value < 0):
                raise OrderRejected(
                    10001, "params error: take profit, stop loss and trailing stop must be >= 0"
                )
        stops = self.account.stops.setdefault(key, Stops())
        if take_profit is not None:
            stops.take_profit = take_profit
        if stop_loss is not None:
            stops.stop_loss = stop_loss
        if trailing is not None:
            stops.trailing, stops.best = trailing, mark
        if not (stops.take_profit or stops.stop_loss or stops.trailing):
            del self.account.stops[key]
        return [self.account.position_push(key, self._ms_abs(now))]

    def set_leverage(self, category: str, symbol: str, buy: Decimal, sell: Decimal, now: float) -> list[Push]:
        """Set the leverage of `symbol`'s positions (POST /v5/position/set-leverage); pushes open rows."""
        self._seen(now)
        inst = self._feed.instruments.get((category, symbol))
        if inst is None or category not in ("linear", "inverse"):
            raise OrderRejected(10001, "params error: symbol invalid")
        for value in (buy, sell):
            if not value.is_finite() or not 1 <= value <= 100:
                raise OrderRejected(10001, "params error: leverage must be between 1 and 100")
        hedged = (category, symbol) in self.account.hedged
        if not hedged and buy != sell:
            raise OrderRejected(
                10001, "params error: buyLeverage must be equal to sellLeverage in one-way mode"
            )
        now_ms = self._ms_abs(now)
        legs = {1: buy, 2: sell} if hedged else {0: buy}
        slots = {
            idx: self.account.slots.setdefault((category, symbol, idx), Held(inst, idx, created_ms=now_ms))
            for idx in legs
        }
        if all(slots[idx].leverage == lev for idx, lev in legs.items()):
            raise OrderRejected(110043, "Set leverage not modified")
        pushes = []
        for idx, lev in legs.items():
            h = slots[idx]
            h.leverage = lev
            if h.size > 0:
                h.liq = _liq_price(h)
                h.updated_ms = now_ms
                pushes.append(self.account.position_push((category, symbol, idx), now_ms))
        return pushes

    def wallet_balance(self, coins: list[str], now: float) -> Json:
        """The one UNIFIED account's row of GET /v5/account/wallet-balance (every coin held by default)."""
        self._seen(now)
        chosen = coins or [c for c, v in self.account.balances.items() if v]
        _, message = self.account.wallet_push(tuple(chosen), self._ms_abs(now))
        row: Json = message["data"][0]
        return row

    # ------------------------------------------------------------------------------- fills the mark makes

    def _cancel(self, o: Resting, now_ms: int, cancel_type: str) -> Push:
        self.account.orders.pop(o.order_id, None)
        row = self.account.resting_row(o, "Cancelled", now_ms, cancel_type)
        self.account.closed[o.order_id] = row
        while len(self.account.closed) > 500:
            del self.account.closed[next(iter(self.account.closed))]
        return self.account.order_push(row, now_ms)

    def _fill_resting(self, o: Resting, price: Decimal, now_ms: int) -> list[Push]:
        """Fill a limit order in full at `price` (its own, or the touch when it crossed on arrival)."""
        self.account.orders.pop(o.order_id, None)
        try:
            qty = self.account.check(o.inst, o.side, o.qty, o.idx, o.reduce_only)
        except OrderRejected:  # a reduce-only order with nothing left to reduce
            return [self._cancel(o, now_ms, "CancelByReduceOnly")]
        pushes = self.account.fill(
            o.inst, o.side, qty, price, o.idx, now_ms, order_qty=o.qty, last=self._last(o.inst),
            link_id=o.link_id, reduce_only=o.reduce_only, order_id=o.order_id,
        )  # fmt: skip
        for topic, message in pushes:
            row = message["data"][0]
            if topic == "order":
                row.update(orderType="Limit", price=str(o.price), timeInForce=o.tif,
                           createdTime=str(o.created_ms))  # fmt: skip
            elif topic == "execution":
                row.update(orderType="Limit", orderPrice=str(o.price))
            if topic in ("execution", "execution.fast") and price == o.price:
                row["isMaker"] = True  # it rested on the book: a maker fill
        for topic, message in pushes:
            if topic == "order":
                self.account.closed[o.order_id] = message["data"][0]
        return pushes

    def _triggers(self, now_ms: int, only: Instrument | None = None) -> list[Push]:
        """Fill the resting limits the mark crossed and close the positions whose stops it reached."""
        pushes: list[Push] = []
        for o in list(self.account.orders.values()):
            if only is not None and o.inst != only:
                continue
            mark = self._mark_of(o.inst)
            if mark <= o.price if o.side == "Buy" else mark >= o.price:
                pushes += self._fill_resting(o, o.price, now_ms)
        for key, stops in list(self.account.stops.items()):
            held = self.account.slots.get(key)
            if held is None or held.size == 0:
                del self.account.stops[key]
                continue
            kind = _stop_hit(stops, held.side, self._mark_of(held.inst))
            if kind is not None:
                pushes += self._stop_fill(key, held, kind, now_ms)
        return pushes

    def _stop_fill(self, key: tuple[str, str, int], held: Held, kind: str, now_ms: int) -> list[Push]:
        """Close the whole position at the touch with a reduce-only market order made by the stop."""
        inst = held.inst
        q = self._feed.quote(inst.category, inst.symbol)
        side = "Sell" if held.side == "Buy" else "Buy"
        stop_type, create_type = _STOP_KINDS[kind]
        del self.account.stops[key]
        pushes = self.account.fill(
            inst, side, held.size, inst.px(q.ask if side == "Buy" else q.bid), held.idx, now_ms,
            order_qty=held.size, last=inst.px(q.last), reduce_only=True, create_type=create_type,
        )  # fmt: skip
        for topic, message in pushes:
            if topic in ("order", "execution"):
                message["data"][0]["stopOrderType"] = stop_type
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
        listed = [
            self.account.with_stops(
                (h.inst.category, h.inst.symbol, h.idx),
                rest_row(h, self._mark_of(h.inst), self.account.fee_rate),
            )
            for h in page
        ]
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


def _stop_hit(stops: Stops, side: str, mark: Decimal) -> str | None:
    """Which of a position's stops `mark` reaches, if any (the trailing stop's best mark moves first)."""
    long = side == "Buy"
    if stops.trailing:
        stops.best = max(stops.best, mark) if long else min(stops.best, mark)
    if stops.take_profit and (mark >= stops.take_profit if long else mark <= stops.take_profit):
        return "take_profit"
    if stops.stop_loss and (mark <= stops.stop_loss if long else mark >= stops.stop_loss):
        return "stop_loss"
    if stops.trailing and (
        mark <= stops.best - stops.trailing if long else mark >= stops.best + stops.trailing
    ):
        return "trailing"
    return None


def _cursor_start(cursor: str, rows: list[Held]) -> int | None:
    """Index of the first row at or after the cursor's (symbol, positionIdx); None for a malformed cursor."""
    if not cursor:
        return 0
    symbol, sep, idx = unquote(cursor).rpartition(":")
    if not sep or not symbol or not idx.isdigit():
        return None
    mark = (symbol, int(idx))
    return next((i for i, h in enumerate(rows) if (h.inst.symbol, h.idx) >= mark), len(rows))
