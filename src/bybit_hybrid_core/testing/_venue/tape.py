"""The public tape: `publicTrade`, `kline` and `allLiquidation` messages (BYBIT_V5.md §5).

Shapes follow the samples: trades carry `T,s,S,v,p,L,i,BT,RPI,seq` (options add `mP,iP,mIv,iv`, drop `L` and
`RPI`, and are grouped per base coin with an envelope `id`); klines carry ints for start/end/timestamp and
strings for prices; liquidation rows are `T,s,S,v,p`. `data` is an array in all three.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .instruments import Instrument, fmt, q8
from .market import Quote, Trade

__all__ = ["INTERVALS", "Candle", "liquidation_message", "trade_message"]

Json = dict[str, Any]
INTERVALS: dict[str, int] = {
    **{m: int(m) * 60_000 for m in ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720")},
    "D": 86_400_000,
    "W": 7 * 86_400_000,
    "M": 0,  # calendar months: see `_bounds`
}
_MONDAY_MS = 4 * 86_400_000  # 1970-01-05, the first Monday: Bybit's weekly candles start on Mondays


def trade_message(topic: str, rows: list[tuple[Quote, Trade]], ts: int, under: Quote | None = None) -> Json:
    """A `publicTrade` push for trades of one symbol (or, on options, of one base coin)."""
    data = [_trade_row(q, t, under) for q, t in rows]
    if rows and rows[0][0].inst.category == "option":
        seq = rows[-1][1].seq
        return {"topic": topic, "ts": ts, "type": "snapshot", "id": f"{topic}-{seq}-{ts}", "data": data}
    return {"topic": topic, "type": "snapshot", "ts": ts, "data": data}


def _trade_row(q: Quote, t: Trade, under: Quote | None) -> Json:
    inst = q.inst
    price, qty = str(inst.px(t.price)), inst.qty(t.qty)
    if inst.category == "option":
        index = under.inst.px(under.index) if under is not None else inst.px(q.index)
        iv = str(q.iv.quantize(Decimal("0.0001")))
        return {
            "i": t.trade_id,
            "T": t.time,
            "p": price,
            "v": qty,
            "S": t.side,
            "seq": t.seq,
            "s": inst.symbol,
            "BT": False,
            "mP": str(inst.px(q.mark)),
            "iP": fmt(q8(index)),
            "mIv": iv,
            "iv": iv,
        }
    row: Json = {"T": t.time, "s": inst.symbol, "S": t.side, "v": qty, "p": price}
    if inst.category != "spot":  # tick direction is a futures field
        row["L"] = t.tick_dir
    row.update({"i": t.trade_id, "BT": False, "RPI": False, "seq": t.seq})
    return row


def liquidation_message(topic: str, rows: list[tuple[int, str, str, str]], ts: int) -> Json:
    """An `allLiquidation` push of rows (T ms, side liquidated, size, price) (public-allLiquidation-*)."""
    data = [{"T": t, "s": topic.rsplit(".", 1)[1], "S": side, "v": v, "p": p} for t, side, v, p in rows]
    return {"topic": topic, "type": "snapshot", "ts": ts, "data": data}


def _bounds(interval: str, ts: int) -> tuple[int, int]:
    """[start, end] ms of the candle of `interval` holding `ts` (end inclusive, as Bybit's `end`)."""
    if interval == "M":
        day = datetime.fromtimestamp(ts / 1000, tz=UTC)
        first = datetime(day.year, day.month, 1, tzinfo=UTC)
        nxt = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
        return int(first.timestamp() * 1000), int(nxt.timestamp() * 1000) - 1
    span = INTERVALS[interval]
    offset = _MONDAY_MS if interval == "W" else 0
    start = (ts - offset) // span * span + offset
    return start, start + span - 1


class Candle:
    """The open candle of one `kline.{interval}.{symbol}` topic, fed by every step."""

    def __init__(self, topic: str, inst: Instrument, interval: str, price: int, ts: int) -> None:
        self.topic, self.inst, self.interval = topic, inst, interval
        self.start, self.end = _bounds(interval, ts)
        self.open = self.high = self.low = self.close = price
        self.volume = Decimal(0)
        self.turnover = Decimal(0)

    def update(self, last: int, trades: list[Trade], ts: int) -> list[Json]:
        """Account for one step; a confirmed candle message if the candle closed before `ts`."""
        out = []
        if ts > self.end:
            out.append(self.message(ts, confirm=True))
            self.start, self.end = _bounds(self.interval, ts)
            self.open = self.high = self.low = self.close = last
            self.volume = self.turnover = Decimal(0)
        for t in trades:
            self.volume += t.qty
            self.turnover += (
                t.qty / self.inst.px(t.price) if self.inst.inverse else t.qty * self.inst.px(t.price)
            )
        self.close = last
        self.high, self.low = max(self.high, last), min(self.low, last)
        return out

    def message(self, ts: int, *, confirm: bool = False) -> Json:
        px = self.inst.px
        candle = {
            "start": self.start,
            "end": self.end,
            "interval": self.interval,
            "open": str(px(self.open)),
            "close": str(px(self.close)),
            "high": str(px(self.high)),
            "low": str(px(self.low)),
            "volume": fmt(self.volume),
            "turnover": fmt(q8(self.turnover)),
            "confirm": confirm,
            "timestamp": ts,
        }
        return {"topic": self.topic, "data": [candle], "ts": ts, "type": "snapshot"}
