"""One trading account: positions, market fills, liquidation, the wallet (BYBIT_V5.md §6).

Positions are slots keyed (category, symbol, positionIdx): idx 0 in one-way mode, idx 1 (Buy leg) and 2 (Sell
leg) in hedge mode. A fill that grows a slot moves its average price (weighted; harmonic on inverse); one that
shrinks it realises PnL on the closed part; in one-way mode a fill larger than the position flips it (close,
then open the rest on the other side, in one fill and one position row). Fees are charged on every fill and,
as on Bybit, count in `curRealisedPnl` / `cumRealisedPnl`.

Each fill takes the next value of the account's `seq` (Bybit's cross sequence) and the fill's execution.fast,
order (in the message `id`), execution and position rows all carry it (§6: "the position's seq equals the
fill's seq"). The pushes come in Bybit's real order: execution.fast, order, execution, position, wallet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from random import Random
from typing import Any

from ..._errors import LocalProtocolError
from .instruments import Instrument, fmt, q8, uuid_like
from .rows import MMR, Fill, Held, envelope, execution_row, fast_row, order_row, position_row

__all__ = ["Account", "OrderRejected", "Resting", "Stops"]

Json = dict[str, Any]
Push = tuple[str, Json]
Key = tuple[str, str, int]
_BALANCES = {"USDT": Decimal(100_000), "USDC": Decimal(10_000), "BTC": Decimal(1), "ETH": Decimal(10)}


class OrderRejected(Exception):
    """Bybit would refuse this order: `ret_code` and `ret_msg` are what the trade reply says."""

    def __init__(self, ret_code: int, ret_msg: str) -> None:
        super().__init__(f"{ret_code}: {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg


@dataclass(slots=True)
class Resting:
    """A limit order resting on the venue until the mark crosses its price."""

    order_id: str
    link_id: str
    inst: Instrument
    side: str
    qty: Decimal
    price: Decimal
    idx: int
    reduce_only: bool
    tif: str
    created_ms: int
    updated_ms: int
    last: Decimal


@dataclass(slots=True)
class Stops:
    """A position's take profit, stop loss and trailing stop (0: unset); `best` is the best mark since the
    trailing stop was set."""

    take_profit: Decimal = Decimal(0)
    stop_loss: Decimal = Decimal(0)
    trailing: Decimal = Decimal(0)
    best: Decimal = Decimal(0)


class Account:
    """Positions, balances and the fill sequence of the one account behind the FakeExchange."""

    def __init__(
        self,
        rng: Random,
        fee_rate: Decimal,
        mark: Callable[[Instrument], Decimal],
        usd: Callable[[str], Decimal],
    ) -> None:
        self._rng = rng
        self.fee_rate = fee_rate
        self._mark = mark
        self._usd = usd
        self.uid = rng.randint(100_000_000, 599_999_999)
        self.seq = rng.randint(10**10, 5 * 10**10)
        self.slots: dict[Key, Held] = {}
        self.hedged: set[tuple[str, str]] = set()
        self.balances = dict(_BALANCES)
        self.cum_realised: dict[str, Decimal] = {}
        self.orders: dict[str, Resting] = {}  # open limit orders by orderId, in placing order
        self.closed: dict[str, Json] = {}  # the last rows of recently closed orders (GET /v5/order/realtime)
        self.stops: dict[Key, Stops] = {}

    # ---------------------------------------------------------------------------------------- modes

    def set_hedge_mode(self, inst: Instrument, on: bool) -> None:
        key = (inst.category, inst.symbol)
        if inst.category not in ("linear", "inverse"):
            raise LocalProtocolError(
                "hedge mode exists for linear and inverse contracts only (position-mode.mdx)"
            )
        if (key in self.hedged) != on and self._open_slots(key):
            raise LocalProtocolError(f"close the {inst.symbol} positions before switching its position mode")
        (self.hedged.add if on else self.hedged.discard)(key)

    def _open_slots(self, key: tuple[str, str]) -> list[Held]:
        return [h for (c, s, _), h in self.slots.items() if (c, s) == key and h.size > 0]

    # ---------------------------------------------------------------------------------------- orders

    def check(self, inst: Instrument, side: str, qty: Decimal, idx: int, reduce_only: bool) -> Decimal:
        """The quantity that would fill, or `OrderRejected` with Bybit's code and text."""
        if side not in ("Buy", "Sell"):
            raise OrderRejected(10001, f"params error: side invalid: {side}")
        if not qty.is_finite() or qty <= 0:
            raise OrderRejected(10001, "params error: qty must be greater than zero")
        if inst.category == "spot":
            return qty
        hedged = (inst.category, inst.symbol) in self.hedged
        if idx not in ((1, 2) if hedged else (0,)):
            raise OrderRejected(10001, "position idx not match position mode")
        held = self.slots.get((inst.category, inst.symbol, idx))
        size, held_side = (held.size, held.side) if held is not None else (Decimal(0), "")
        # a hedge leg only holds its own side: the other side closes it, as reduce-only does in one-way mode
        closing = reduce_only or (hedged and side != ("Buy" if idx == 1 else "Sell"))
        if closing:
            if size == 0 or held_side == side:
                raise OrderRejected(110017, "current position is zero, cannot fix reduce-only order qty")
            return min(qty, size)
        return qty

    def fill(
        self,
        inst: Instrument,
        side: str,
        qty: Decimal,
        price: Decimal,
        idx: int,
        now_ms: int,
        *,
        order_qty: Decimal,
        last: Decimal,
        link_id: str = "",
        reduce_only: bool = False,
        exec_type: str = "Trade",
        create_type: str = "CreateByUser",
        order_id: str | None = None,
    ) -> list[Push]:
        """Execute a checked order at `price`; the private pushes in Bybit's order (`order_id`: the
        filled order's id, else a new one)."""
        self.seq += 1
        fee = q8(self.fee_rate * (qty / price if inst.inverse else qty * price))
        mark = self._mark(inst)
        if inst.category == "spot":
            closed, pnl = Decimal(0), Decimal(0)
            self._spot_balances(inst, side, qty, price, fee)
        else:
            closed, pnl = self._apply(inst, side, qty, price, idx, now_ms, fee)
        f = Fill(
            inst,
            side,
            qty,
            price,
            order_qty,
            order_id if order_id is not None else uuid_like(self._rng),
            uuid_like(self._rng),
            link_id,
            self.seq,
            now_ms,
            fee,
            self.fee_rate,
            closed,
            pnl,
            mark,
            last,
            idx,
            reduce_only,
            exec_type,
            create_type,
        )
        oid = f"{self.uid}_{inst.symbol}_{self.seq}"
        pushes: list[Push] = []
        if exec_type == "Trade":  # execution.fast carries trades only (fast-execution.mdx)
            pushes.append(("execution.fast", envelope("execution.fast", None, now_ms, [fast_row(f)])))
        pushes.append(("order", envelope("order", oid, now_ms, [order_row(f)])))
        pushes.append(("execution", envelope("execution", oid, now_ms, [execution_row(f)])))
        if inst.category != "spot":
            pushes.append(self.position_push((inst.category, inst.symbol, idx), now_ms))
        pushes.append(self.wallet_push(_coins_of(inst), now_ms))
        return pushes

    def _apply(
        self, inst: Instrument, side: str, qty: Decimal, price: Decimal, idx: int, now_ms: int, fee: Decimal
    ) -> tuple[Decimal, Decimal]:
        """Move the slot by one fill; returns (closed size, gross PnL of the closed part)."""
        h = self.slots.setdefault((inst.category, inst.symbol, idx), Held(inst, idx, created_ms=now_ms))
        closed = pnl = Decimal(0)
        if h.size > 0 and h.side != side:
            closed = min(qty, h.size)
            sign = 1 if h.side == "Buy" else -1
            gross = closed * (1 / h.avg - 1 / price) if inst.inverse else (price - h.avg) * closed
            pnl = q8(sign * gross)
            h.size -= closed
            if h.size == 0:
                h.side, h.avg = "", Decimal(0)
        rest = qty - closed
        if rest > 0:
            if h.size == 0:
                if closed == 0:
                    h.cur_realised = Decimal(0)  # a new position (not a flip) starts its own realised PnL
                h.side, h.avg, h.open_ms = side, price, now_ms
            elif inst.inverse:  # inverse: the average of contracts over coin value (harmonic)
                h.avg = q8((h.size + rest) / (h.size / h.avg + rest / price))
            else:
                h.avg = q8((h.avg * h.size + price * rest) / (h.size + rest))
            h.size += rest
        self._settle(h, pnl - fee)
        h.seq, h.updated_ms, h.status = self.seq, now_ms, "Normal"
        h.liq = _liq_price(h)
        return closed, pnl

    def _settle(self, h: Held, amount: Decimal) -> None:
        h.cum_realised += amount
        h.cur_realised += amount
        coin = h.inst.settle
        self.balances[coin] = self.balances.get(coin, Decimal(0)) + amount
        self.cum_realised[coin] = self.cum_realised.get(coin, Decimal(0)) + amount

    def _spot_balances(self, inst: Instrument, side: str, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        sign = 1 if side == "Buy" else -1
        b = self.balances
        b[inst.base] = b.get(inst.base, Decimal(0)) + sign * qty
        b[inst.quote] = b.get(inst.quote, Decimal(0)) - sign * qty * price - fee

    # ---------------------------------------------------------------------------------- liquidation

    def liquidate(self, key: Key, now_ms: int, last: Decimal) -> list[Push]:
        """A position row with positionStatus "Liq", then the takeover fill at the bankruptcy price and the
        flat row (BYBIT_V5.md §6 positionStatus)."""
        h = self.slots.get(key)
        if h is None or h.size == 0:
            raise LocalProtocolError(f"no open position {key} to liquidate")
        self.seq += 1
        h.status, h.seq, h.updated_ms = "Liq", self.seq, now_ms
        pushes = [self.position_push(key, now_ms)]
        price = h.liq if h.liq is not None else self._mark(h.inst)
        side = "Sell" if h.side == "Buy" else "Buy"
        pushes += self.fill(
            h.inst,
            side,
            h.size,
            price,
            h.idx,
            now_ms,
            order_qty=h.size,
            last=last,
            reduce_only=True,
            exec_type="BustTrade",
            create_type="CreateByLiq",
        )
        return pushes

    # ------------------------------------------------------------------------------------- rows out

    def position_push(self, key: Key, now_ms: int) -> Push:
        h = self.slots[key]
        row = self.with_stops(key, position_row(h, self._mark(h.inst), self.fee_rate))
        return "position", envelope("position", f"{self.uid}_position_{now_ms}", now_ms, [row])

    def with_stops(self, key: Key, row: Json) -> Json:
        """`row` (a position row) with the slot's takeProfit/stopLoss/trailingStop; a flat slot loses them."""
        h = self.slots.get(key)
        if h is None or h.size == 0:
            self.stops.pop(key, None)
        stops = self.stops.get(key)
        if stops is not None:
            row["takeProfit"], row["stopLoss"] = fmt(stops.take_profit), fmt(stops.stop_loss)
            row["trailingStop"] = fmt(stops.trailing)
        return row

    def resting_row(self, o: Resting, status: str, now_ms: int, cancel_type: str = "UNKNOWN") -> Json:
        """The `order` row of a resting limit order: New, Cancelled (or Untriggered-free statuses)."""
        f = Fill(o.inst, o.side, Decimal(0), o.price, o.qty, o.order_id, "", o.link_id, self.seq, now_ms,
                 Decimal(0), self.fee_rate, Decimal(0), Decimal(0), self._mark(o.inst), o.last, o.idx,
                 o.reduce_only)  # fmt: skip
        row = order_row(f)
        open_ = status in ("New", "PartiallyFilled")
        row.update(
            orderStatus=status,
            cancelType=cancel_type,
            timeInForce=o.tif,
            price=str(o.price),
            avgPrice="",
            leavesQty=o.inst.qty(o.qty) if open_ else "0",
            leavesValue=fmt(q8(o.qty * o.price)) if open_ else "0",
            cumExecQty="0",
            cumExecValue="0",
            cumExecFee="0",
            orderType="Limit",
            createdTime=str(o.created_ms),
            updatedTime=str(now_ms),
            cumFeeDetail={},
        )
        return row

    def order_push(self, row: Json, now_ms: int) -> Push:
        """An `order` push of one row (no fill: the message id is the account's, not a fill's)."""
        return "order", envelope("order", f"{self.uid}_order_{now_ms}", now_ms, [row])

    def open_slots(self) -> list[Held]:
        """Open positions in a stable order (category, symbol, positionIdx)."""
        return [self.slots[k] for k in sorted(self.slots) if self.slots[k].size > 0]

    def _exposure(self) -> tuple[dict[str, Decimal], dict[str, Decimal], dict[str, Decimal]]:
        """Initial margin, maintenance margin and unrealised PnL of the open positions, per settle coin."""
        im: dict[str, Decimal] = {}
        mm: dict[str, Decimal] = {}
        upl: dict[str, Decimal] = {}
        for h in self.open_slots():
            c, value = h.inst.settle, h.value()
            im[c] = im.get(c, Decimal(0)) + value / h.leverage
            mm[c] = mm.get(c, Decimal(0)) + value * MMR
            upl[c] = upl.get(c, Decimal(0)) + h.upnl(self._mark(h.inst))
        return im, mm, upl

    def _in_usd(self, amounts: dict[str, Decimal]) -> Decimal:
        return sum((v * self._usd(c) for c, v in amounts.items()), Decimal(0))

    def wallet_push(self, coins: tuple[str, ...], now_ms: int) -> Push:
        """The `wallet` push for `coins` with account totals (sample private-wallet-real-2026.json)."""
        im, mm, upl = self._exposure()
        zero = Decimal(0)
        wallet, perp = self._in_usd(self.balances), self._in_usd(upl)
        t_im, t_mm = self._in_usd(im), self._in_usd(mm)
        margin = wallet + perp

        def rate(x: Decimal) -> str:
            return fmt((x / margin).quantize(Decimal("0.0001"))) if margin > 0 else "0"

        coin_rows = [self._coin_row(c, im.get(c, zero), mm.get(c, zero), upl.get(c, zero)) for c in coins]
        row = {
            "accountIMRate": rate(t_im),
            "accountMMRate": rate(t_mm),
            "accountIMRateByMp": rate(t_im),
            "accountMMRateByMp": rate(t_mm),
            "totalEquity": fmt(q8(margin)),
            "totalWalletBalance": fmt(q8(wallet)),
            "totalMarginBalance": fmt(q8(margin)),
            "totalAvailableBalance": fmt(q8(margin - t_im)),
            "totalPerpUPL": fmt(q8(perp)),
            "totalInitialMargin": fmt(q8(t_im)),
            "totalMaintenanceMargin": fmt(q8(t_mm)),
            "totalInitialMarginByMp": fmt(q8(t_im)),
            "totalMaintenanceMarginByMp": fmt(q8(t_mm)),
            "coin": coin_rows,
            "accountLTV": "0",
            "accountType": "UNIFIED",
        }
        return "wallet", envelope("wallet", f"{self.uid}_wallet_{now_ms}", now_ms, [row])

    def _coin_row(self, coin: str, im: Decimal, mm: Decimal, upl: Decimal) -> Json:
        balance = self.balances.get(coin, Decimal(0))
        equity = balance + upl
        return {
            "coin": coin,
            "equity": fmt(q8(equity)),
            "usdValue": fmt(q8(equity * self._usd(coin))),
            "walletBalance": fmt(q8(balance)),
            "availableToWithdraw": "",
            "availableToBorrow": "",
            "borrowAmount": "0",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": fmt(q8(im)),
            "totalPositionMM": fmt(q8(mm)),
            "unrealisedPnl": fmt(upl),
            "cumRealisedPnl": fmt(self.cum_realised.get(coin, Decimal(0))),
            "bonus": "0",
            "collateralSwitch": True,
            "marginCollateral": True,
            "locked": "0",
            "spotHedgingQty": "0",
            "spotBorrow": "0",
        }


def _coins_of(inst: Instrument) -> tuple[str, ...]:
    return (inst.base, inst.quote) if inst.category == "spot" else (inst.settle,)


def _liq_price(h: Held) -> Decimal | None:
    """Isolated-style liquidation price at the slot's leverage, on the tick; None for options, flat slots."""
    if h.size == 0 or h.inst.category == "option":
        return None
    step = 1 / h.leverage - MMR
    long = h.side == "Buy"
    if h.inst.inverse:
        price = h.avg / (1 + step) if long else h.avg / (1 - step)
    else:
        price = h.avg * (1 - step) if long else h.avg * (1 + step)
    return h.inst.px(h.inst.ticks(price)) if price > 0 else None
