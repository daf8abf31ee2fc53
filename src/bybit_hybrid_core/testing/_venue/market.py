"""Prices that move: one `Quote` per instrument, stepped every 100 ms by a seeded random walk.

Every instrument steps on every step whether or not anyone listens, so the market is the same for the same
seed whatever the subscriptions (determinism). State is kept in integer ticks; `ticker_fields()` renders the
Bybit ticker as strings. Linear and inverse tickers are a snapshot, then deltas of only the fields that
changed (BYBIT_V5.md §5 tickers): `ticker_delta()` diffs the fields against what the stream last showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from typing import Any, NamedTuple

from .instruments import Instrument, fmt, q8, uuid_like

__all__ = ["Market", "Quote", "Trade"]

Json = dict[str, Any]
_VOL = 0.00003  # relative move per 100 ms step, about BTC's realised volatility
_FUNDING_MS = 8 * 3600 * 1000
_P4 = Decimal("0.0001")
_P6 = Decimal("0.000001")


class Trade(NamedTuple):
    """One public trade: `time` ms, taker `side`, `qty`, `price` in ticks, tick direction, id, cross seq."""

    time: int
    side: str
    qty: Decimal
    price: int
    tick_dir: str
    trade_id: str
    seq: int


@dataclass(slots=True)
class Quote:
    """The live state of one instrument (prices in ticks)."""

    inst: Instrument
    index: int
    mark: int
    last: int
    bid: int
    ask: int
    bid_size: Decimal
    ask_size: Decimal
    prev24h: int
    high: int
    low: int
    volume: Decimal = Decimal(0)
    turnover: Decimal = Decimal(0)
    open_interest: Decimal = Decimal(0)
    funding: Decimal = Decimal("0.0001")
    iv: Decimal = Decimal("0.45")
    tick_dir: str = "ZeroPlusTick"
    cs: int = 0
    ts: int = 0  # exchange ms of the last step
    shown: dict[str, str] = field(default_factory=dict)  # the ticker as the stream last showed it
    resnap: bool = False  # after a restart the next ticker message is a snapshot
    held: bool = False  # set_mark: the next step shows the mark (and book top) as set


class Market:
    """All quotes, and the seeded walk that moves them."""

    def __init__(self, rng: Random, start_ms: int) -> None:
        self._rng = rng
        self._start_ms = start_ms
        self.quotes: dict[tuple[str, str], Quote] = {}

    # ------------------------------------------------------------------------------------- instruments

    def add(self, inst: Instrument) -> Quote:
        """Start quoting `inst` at its start price (randomised by under 1% from the seed)."""
        rng = self._rng
        t0 = inst.ticks(inst.start)
        base = max(10, t0 + round(t0 * rng.uniform(-0.005, 0.005)))
        q = Quote(inst, base, base, base, base - 1, base, self._size(inst), self._size(inst), t0, base, base)
        q.open_interest = inst.qty_step * rng.randint(100_000, 900_000)
        q.cs = rng.randint(10**9, 10**10)
        q.ts = self._start_ms
        q.shown = self.ticker_fields(q)
        self.quotes[(inst.category, inst.symbol)] = q
        return q

    def _size(self, inst: Instrument) -> Decimal:
        return inst.qty_step * self._rng.randint(1, 3000)

    # ----------------------------------------------------------------------------------------- stepping

    def step(self, ts: int) -> dict[tuple[str, str], list[Trade]]:
        """Move every quote one step; returns the public trades of this step per (category, symbol)."""
        trades: dict[tuple[str, str], list[Trade]] = {}
        for key, q in self.quotes.items():
            self._walk(q, 1)
            burst = self._trades(q, ts) if self._rng.random() < 0.3 else []
            if burst:
                trades[key] = burst
            q.cs += self._rng.randint(1, 60)
            q.ts = ts
        return trades

    def jump(self, steps: int, ts: int) -> None:
        """Skip `steps` steps at once (a big `now` jump): one Brownian move of the same spread, no trades."""
        for q in self.quotes.values():
            self._walk(q, steps)
            q.cs += 30 * steps
            q.ts = ts

    def _walk(self, q: Quote, steps: int) -> None:
        rng, inst = self._rng, q.inst
        sigma = max(2.0, float(inst.px(q.index)) * _VOL / float(inst.tick)) * math.sqrt(steps)
        floor = max(1, inst.ticks(inst.start) // 10)
        held, q.held = q.held, False
        if rng.random() < 0.85 or steps > 1:
            move = max(-0.1 * q.index, min(0.1 * q.index, rng.gauss(0.0, sigma)))
            q.index = max(floor, q.index + round(move))
        # the mark moves on most steps (positions must see it move), yet many deltas carry no markPrice
        if (rng.random() < 0.65 or steps > 1) and not held:
            mark = max(floor, q.index + round(rng.gauss(0.0, 1.0)))
            q.mark = mark if mark != q.mark else mark + rng.choice((-1, 1))
        if (rng.random() < 0.7 or steps > 1) and not held:
            q.bid = max(1, q.mark - rng.randint(0, 2))  # prices stay at least one tick
            q.ask = q.bid + rng.choice((1, 1, 1, 2))
            q.bid_size, q.ask_size = self._size(inst), self._size(inst)
        elif rng.random() < 0.5:
            q.bid_size = self._size(inst)
        if rng.random() < 0.3:
            q.open_interest = max(inst.qty_step, q.open_interest + inst.qty_step * rng.randint(-500, 500))
        if rng.random() < 0.05:
            q.funding += _P6 * rng.choice((-1, 1))
        if inst.category == "option" and rng.random() < 0.3:
            q.iv = max(Decimal("0.05"), q.iv + _P4 * rng.randint(-20, 20))

    def _trades(self, q: Quote, ts: int) -> list[Trade]:
        rng, inst = self._rng, q.inst
        side = rng.choice(("Buy", "Sell"))
        seq = q.cs + 1
        out = []
        for _ in range(rng.randint(1, 8)):
            price = q.ask if side == "Buy" else q.bid
            if rng.random() < 0.2:  # walked one level deeper
                price = price + 1 if side == "Buy" else max(1, price - 1)
            qty = inst.qty_step * rng.randint(1, 2000)
            q.tick_dir = _tick_direction(q.tick_dir, price - q.last)
            q.last = price
            q.high, q.low = max(q.high, price), min(q.low, price)
            q.volume += qty
            q.turnover += qty / inst.px(price) if inst.inverse else qty * inst.px(price)
            out.append(Trade(ts - 1, side, qty, price, q.tick_dir, uuid_like(rng), seq))
        return out

    def liquidations(self, ts: int) -> list[tuple[tuple[str, str], str, Decimal, int]]:
        """Other traders' liquidations this step: ((category, symbol), side liquidated, qty, price ticks)."""
        out = []
        for key, q in self.quotes.items():
            if key[0] in ("linear", "inverse") and self._rng.random() < 0.01:
                side = self._rng.choice(("Buy", "Sell"))
                out.append((key, side, self._size(q.inst), q.bid if side == "Buy" else q.ask))
        return out

    def set_mark(self, q: Quote, price: Decimal) -> None:
        """Put the mark (and index, book top and last) at `price`; the walk continues from there."""
        t = q.inst.ticks(price)
        if t <= 0:
            raise ValueError(f"mark must be at least one tick ({q.inst.tick}), got {price}")
        q.index = q.mark = q.last = t
        q.bid = max(1, t - 1)
        q.ask = q.bid + 1
        q.held = True
        q.high, q.low = max(q.high, t), min(q.low, t)

    # ------------------------------------------------------------------------------------------ tickers

    def ticker_fields(self, q: Quote) -> dict[str, str]:
        """The full ticker `data` of `q` as Bybit's strings, per category (BYBIT_V5.md §5 tickers)."""
        if q.inst.category == "spot":
            return self._spot_fields(q)
        if q.inst.category == "option":
            return self._option_fields(q)
        return self._derivative_fields(q)

    def _derivative_fields(self, q: Quote) -> dict[str, str]:
        inst, px = q.inst, q.inst.px
        oi = q.open_interest
        value = oi / px(q.mark) if inst.inverse else oi * px(q.mark)
        value = q8(value) if inst.inverse else value.quantize(Decimal("0.01"))
        half = oi / 2
        return {
            "symbol": inst.symbol,
            "tickDirection": q.tick_dir,
            "price24hPcnt": str(((px(q.last) - px(q.prev24h)) / px(q.prev24h)).quantize(_P6)),
            "lastPrice": str(px(q.last)),
            "prevPrice24h": str(px(q.prev24h)),
            "highPrice24h": str(px(q.high)),
            "lowPrice24h": str(px(q.low)),
            "prevPrice1h": str(px(q.prev24h)),
            "markPrice": str(px(q.mark)),
            "indexPrice": str(px(q.index)),
            "openInterest": inst.qty(oi),
            "openInterestValue": str(value),
            "turnover24h": str(q8(q.turnover) if inst.inverse else q.turnover.quantize(_P4)),
            "volume24h": str(q.volume.quantize(_P4)),
            "fundingIntervalHour": "8",
            "fundingCap": "0.005",
            "singleOpenInterest": fmt(half),
            "singleOpenInterestValue": str(
                q8(value / 2) if inst.inverse else (value / 2).quantize(Decimal("0.01"))
            ),
            "nextFundingTime": str((q.ts // _FUNDING_MS + 1) * _FUNDING_MS),
            "fundingRate": str(q.funding.quantize(Decimal("0.00000001")).normalize()),
            "bid1Price": str(px(q.bid)),
            "bid1Size": inst.qty(q.bid_size),
            "ask1Price": str(px(q.ask)),
            "ask1Size": inst.qty(q.ask_size),
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
        }

    def _spot_fields(self, q: Quote) -> dict[str, str]:
        px = q.inst.px
        return {
            "symbol": q.inst.symbol,
            "lastPrice": str(px(q.last)),
            "highPrice24h": str(px(q.high)),
            "lowPrice24h": str(px(q.low)),
            "prevPrice24h": str(px(q.prev24h)),
            "volume24h": fmt(q.volume),
            "turnover24h": fmt(q8(q.turnover)),
            "price24hPcnt": str(((px(q.last) - px(q.prev24h)) / px(q.prev24h)).quantize(_P4)),
            "usdIndexPrice": fmt(q8(px(q.index))),
        }

    def _option_fields(self, q: Quote) -> dict[str, str]:
        inst, px = q.inst, q.inst.px
        under = self.quotes.get(("linear", inst.underlying))
        spot = under.inst.px(under.index) if under is not None else px(q.index)
        strike = inst.strike if inst.strike is not None else spot
        delta = min(Decimal("0.99"), max(Decimal("0.01"), Decimal("0.5") + (spot - strike) / spot * 4))
        iv = q.iv.quantize(_P4)
        return {
            "symbol": inst.symbol,
            "bidPrice": str(px(q.bid)),
            "bidSize": inst.qty(q.bid_size),
            "bidIv": str(iv - Decimal("0.0100")),
            "askPrice": str(px(q.ask)),
            "askSize": inst.qty(q.ask_size),
            "askIv": str(iv + Decimal("0.0100")),
            "lastPrice": str(px(q.last)),
            "highPrice24h": str(px(q.high)),
            "lowPrice24h": str(px(q.low)),
            "markPrice": str(px(q.mark)),
            "indexPrice": fmt(q8(spot)),
            "markPriceIv": str(iv),
            "underlyingPrice": fmt(q8(spot)),
            "openInterest": fmt(q.open_interest),
            "turnover24h": fmt(q8(q.turnover)),
            "volume24h": fmt(q.volume),
            "totalVolume": fmt(q.volume.to_integral_value()),
            "totalTurnover": fmt(q.turnover.to_integral_value()),
            "delta": str(delta.quantize(_P6)),
            "gamma": "0.00001",
            "vega": "100",
            "theta": "-40",
            "change24h": str(((px(q.last) - px(q.prev24h)) / px(q.prev24h)).quantize(_P6)),
        }

    def ticker_delta(self, q: Quote) -> dict[str, str] | None:
        """The fields that changed since the stream last showed `q` (with `symbol`), and mark them shown.

        None when nothing changed (Bybit sends no empty deltas).
        """
        now = self.ticker_fields(q)
        changed = {k: v for k, v in now.items() if q.shown.get(k) != v}
        q.shown = now
        if not changed:
            return None
        return {"symbol": q.inst.symbol, **changed}


def _tick_direction(previous: str, move: int) -> str:
    if move > 0:
        return "PlusTick"
    if move < 0:
        return "MinusTick"
    return "ZeroPlusTick" if previous in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"
