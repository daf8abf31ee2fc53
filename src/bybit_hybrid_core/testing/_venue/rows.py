"""Private rows in Bybit's real shapes (BYBIT_V5.md §6): position, order, execution, execution.fast, wallet.

Key sets and key order are copied from the samples (`private-position-linear-real-2025-10.json`,
`private-order-linear-filled-real-2025-10.json`, `private-execution-linear-docs.json`,
`private-execution-fast-docs.json`, `private-wallet-real-2026.json`): decimals and in-`data` times are
strings, `seq`, `positionIdx`, `adlRankIndicator` and `openTime` are ints. `execution.fast` has no `id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .instruments import Instrument, fmt, q8

__all__ = [
    "MMR",
    "Fill",
    "Held",
    "envelope",
    "execution_row",
    "fast_row",
    "order_row",
    "position_row",
    "rest_row",
]

Json = dict[str, Any]
MMR = Decimal("0.005")  # maintenance margin rate of the first risk tier


@dataclass(slots=True)
class Held:
    """One position slot (category, symbol, positionIdx); flat when `size` is 0 (side "")."""

    inst: Instrument
    idx: int
    side: str = ""
    size: Decimal = Decimal(0)
    avg: Decimal = Decimal(0)
    leverage: Decimal = Decimal(10)
    cum_realised: Decimal = Decimal(0)
    cur_realised: Decimal = Decimal(0)
    created_ms: int = 0
    updated_ms: int = 0
    open_ms: int = 0
    seq: int = -1
    status: str = "Normal"
    liq: Decimal | None = None

    def value(self) -> Decimal:
        if self.size == 0:
            return Decimal(0)
        return q8(self.size / self.avg if self.inst.inverse else self.size * self.avg)

    def upnl(self, mark: Decimal) -> Decimal:
        """Unrealised PnL at `mark`, in the settle coin: (mark-avg)*size, inverse size*(1/avg-1/mark)."""
        if self.size == 0:
            return Decimal(0)
        sign = 1 if self.side == "Buy" else -1
        if self.inst.inverse:
            return q8(sign * self.size * (1 / self.avg - 1 / mark))
        return q8(sign * (mark - self.avg) * self.size)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one market order, with everything the four fill rows say about it."""

    inst: Instrument
    side: str
    qty: Decimal
    price: Decimal
    order_qty: Decimal
    order_id: str
    exec_id: str
    link_id: str
    seq: int
    time_ms: int
    fee: Decimal
    fee_rate: Decimal
    closed: Decimal
    pnl: Decimal
    mark: Decimal
    last: Decimal
    position_idx: int
    reduce_only: bool
    exec_type: str = "Trade"
    create_type: str = "CreateByUser"

    def value(self) -> Decimal:
        return q8(self.qty / self.price if self.inst.inverse else self.qty * self.price)

    def order_price(self) -> str:
        """A market order's protection price: 5% through the fill, on the tick (sample order Filled)."""
        bound = self.price * (Decimal("1.05") if self.side == "Buy" else Decimal("0.95"))
        return str(self.inst.px(self.inst.ticks(bound)))


def envelope(topic: str, msg_id: str | None, creation_ms: int, rows: list[Json]) -> Json:
    """A private push: `id` (absent on execution.fast), `topic`, `creationTime`, `data` (always an array)."""
    if msg_id is None:
        return {"topic": topic, "creationTime": creation_ms, "data": rows}
    return {"id": msg_id, "topic": topic, "creationTime": creation_ms, "data": rows}


def position_row(h: Held, mark: Decimal, fee_rate: Decimal) -> Json:
    """The `position` row of `h` at `mark` (a flat slot gives side "" and size "0")."""
    inst, is_open = h.inst, h.size > 0
    value = h.value()
    sign = 1 if h.side == "Buy" else -1
    break_even = q8(h.avg * (1 + sign * 2 * fee_rate)) if is_open else Decimal(0)
    return {
        "positionIdx": h.idx,
        "tradeMode": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": inst.symbol,
        "side": h.side,
        "size": inst.qty(h.size) if is_open else "0",
        "entryPrice": fmt(h.avg),
        "sessionAvgPrice": "",
        "leverage": fmt(h.leverage),
        "positionValue": fmt(value),
        "positionBalance": "0",
        "markPrice": str(mark),
        "positionIM": fmt(q8(value / h.leverage)),
        "positionMM": fmt(q8(value * MMR)),
        "positionIMByMp": fmt(q8(value / h.leverage)),
        "positionMMByMp": fmt(q8(value * MMR)),
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": fmt(h.upnl(mark)),
        "cumRealisedPnl": fmt(h.cum_realised),
        "curRealisedPnl": fmt(h.cur_realised),
        "createdTime": str(h.created_ms),
        "updatedTime": str(h.updated_ms),
        "tpslMode": "Full",
        "liqPrice": str(h.liq) if h.liq is not None and is_open else "",
        "bustPrice": "",
        "category": inst.category,
        "positionStatus": h.status,
        "adlRankIndicator": 2 if is_open else 0,
        "autoAddMargin": 0,
        "leverageSysUpdatedTime": "",
        "mmrSysUpdatedTime": "",
        "seq": h.seq,
        "breakEvenPrice": fmt(break_even),
        "openTime": h.open_ms if is_open else 0,
        "isReduceOnly": False,
    }


def rest_row(h: Held, mark: Decimal, fee_rate: Decimal) -> Json:
    """A GET /v5/position/list row: the WS fields with `avgPrice` for `entryPrice`, no `category`
    (it is on `result`), as in docs/v5/position/position.mdx."""
    row = position_row(h, mark, fee_rate)
    return {("avgPrice" if k == "entryPrice" else k): v for k, v in row.items() if k != "category"}


def fast_row(f: Fill) -> Json:
    """An `execution.fast` row (sample private-execution-fast-docs.json)."""
    return {
        "category": f.inst.category,
        "symbol": f.inst.symbol,
        "execId": f.exec_id,
        "execPrice": str(f.price),
        "execQty": f.inst.qty(f.qty),
        "orderId": f.order_id,
        "isMaker": False,
        "orderLinkId": f.link_id,
        "side": f.side,
        "execTime": str(f.time_ms),
        "seq": f.seq,
    }


def execution_row(f: Fill) -> Json:
    """An `execution` row (sample private-execution-linear-docs.json, without the optional extraFees)."""
    inst = f.inst
    derivative = inst.category != "spot"
    return {
        "category": inst.category,
        "symbol": inst.symbol,
        "closedSize": inst.qty(f.closed) if derivative and f.closed else ("0" if derivative else ""),
        "execFee": fmt(f.fee),
        "execId": f.exec_id,
        "execPrice": str(f.price),
        "execQty": inst.qty(f.qty),
        "execType": f.exec_type,
        "execValue": fmt(f.value()),
        "feeRate": fmt(f.fee_rate),
        "tradeIv": "",
        "markIv": "",
        "blockTradeId": "",
        "markPrice": str(f.mark) if derivative else "",
        "indexPrice": "",
        "underlyingPrice": "",
        "leavesQty": "0",
        "orderId": f.order_id,
        "orderLinkId": f.link_id,
        "orderPrice": f.order_price(),
        "orderQty": inst.qty(f.order_qty),
        "orderType": "Market",
        "stopOrderType": "UNKNOWN",
        "side": f.side,
        "execTime": str(f.time_ms),
        "isLeverage": "0",
        "isMaker": False,
        "seq": f.seq,
        "marketUnit": "",
        "execPnl": fmt(f.pnl),
        "createType": f.create_type,
        "feeCurrency": inst.quote if inst.category == "spot" else inst.settle,
    }


def order_row(f: Fill) -> Json:
    """The `order` row of a filled market order (sample private-order-linear-filled-real-2025-10.json)."""
    inst = f.inst
    coin = inst.quote if inst.category == "spot" else inst.settle
    return {
        "category": inst.category,
        "symbol": inst.symbol,
        "orderId": f.order_id,
        "orderLinkId": f.link_id,
        "blockTradeId": "",
        "side": f.side,
        "positionIdx": f.position_idx,
        "orderStatus": "Filled",
        "cancelType": "UNKNOWN",
        "rejectReason": "EC_NoError",
        "timeInForce": "IOC",
        "isLeverage": "",
        "price": f.order_price(),
        "qty": inst.qty(f.order_qty),
        "avgPrice": str(f.price),
        "leavesQty": "0",
        "leavesValue": "0",
        "cumExecQty": inst.qty(f.qty),
        "cumExecValue": fmt(f.value()),
        "cumExecFee": fmt(f.fee),
        "orderType": "Market",
        "stopOrderType": "",
        "orderIv": "",
        "triggerPrice": "",
        "takeProfit": "",
        "stopLoss": "",
        "triggerBy": "",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "placeType": "",
        "lastPriceOnCreated": str(f.last),
        "closeOnTrigger": False,
        "reduceOnly": f.reduce_only,
        "smpGroup": 0,
        "smpType": "None",
        "smpOrderId": "",
        "slLimitPrice": "0",
        "tpLimitPrice": "0",
        "tpslMode": "UNKNOWN",
        "createType": f.create_type,
        "marketUnit": "",
        "createdTime": str(f.time_ms),
        "updatedTime": str(f.time_ms),
        "feeCurrency": coin if inst.category == "spot" else "",
        "closedPnl": fmt(f.pnl - f.fee) if f.closed else "0",
        "slippageTolerance": "0",
        "slippageToleranceType": "UNKNOWN",
        "cumFeeDetail": {coin: fmt(f.fee)},
    }
