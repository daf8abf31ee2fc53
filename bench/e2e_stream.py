"""The stream `bench_e2e.py` serves: 200 linear symbols x (tickers, orderbook.50, publicTrade), seeded.

Bybit's real linear shapes (BYBIT_V5.md section 5): first a `tickers` snapshot (every field, empty strings
where Bybit sends them) and an `orderbook.50` snapshot (50 levels a side) per symbol, then a mix of updates
(35% ticker deltas of the changed fields only, 50% book deltas that update, insert and delete real levels of
a simulated book, 15% `publicTrade` bursts). Activity across symbols is Zipf-skewed (a few symbols are busy,
most are quiet), prices walk by whole ticks, `cs`/`u`/`seq` only grow. Compact JSON, as Bybit sends it:
about 256 B per message on average. Deterministic for a seed (no dict or set order depends on hashing).

Every message is one unmasked server WebSocket text frame on the wire (`frame`).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["END_TOPIC", "SNAPSHOTS", "Stream", "end_marker", "frame", "make_stream", "symbols", "topics_for"]

N_SYMBOLS = 200
SNAPSHOTS = 2 * N_SYMBOLS  # a stream starts with a tickers and an orderbook snapshot per symbol
START_MS = 1_700_000_000_000
END_TOPIC = "publicTrade.ZZGOUSDT"  # a client subscribes to it to start the push; its one trade ends it
_BASES = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "BNB", "LINK", "AVAX", "SUI", "LTC", "DOT", "TRX",
          "NEAR", "APT", "ARB", "OP", "WIF", "1000PEPE", "TON", "BCH", "ETC", "FIL", "ATOM", "INJ", "SEI",
          "TIA", "ORDI", "1000BONK", "ENA", "WLD", "FET", "JUP", "PYTH", "STX", "IMX", "AAVE", "UNI",
          "MKR", "CRV", "LDO", "GALA", "SAND", "MANA", "AXS")  # fmt: skip
_TICKS = ("PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick")


def frame(payload: bytes) -> bytes:
    """One unmasked FIN text frame (server -> client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


@dataclass
class _Symbol:
    name: str
    price: float
    pdec: int
    qdec: int
    tick: float
    mark: float = 0.0
    oi: float = 0.0
    vol: float = 0.0
    turnover: float = 0.0
    high: float = 0.0
    low: float = 0.0
    prev24: float = 0.0
    bids: dict[float, str] = field(default_factory=dict)  # price -> size
    asks: dict[float, str] = field(default_factory=dict)
    u: int = 1
    seq: int = 0
    cs: int = 0


def _symbols(rng: random.Random, n: int) -> list[_Symbol]:
    names = list(_BASES)
    while len(names) < n:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 6)))
        if name not in names:
            names.append(name)
    out = []
    for base in names[:n]:
        price = {"BTC": 67000.0, "ETH": 3500.0}.get(base) or math.exp(rng.uniform(-7.6, 6.685))  # 5e-4..800
        pdec = min(8, max(2, 5 - math.floor(math.log10(price))))
        s = _Symbol(base + "USDT", price, pdec, 3 if price > 1000 else 1 if price > 10 else 0, 10.0**-pdec)
        s.mark = price
        s.prev24 = price * rng.uniform(0.95, 1.05)
        s.high, s.low = max(price, s.prev24) * 1.01, min(price, s.prev24) * 0.99
        s.oi = rng.uniform(1e4, 1e8) / price**0.5
        s.vol = rng.uniform(1e5, 1e9) / price**0.5
        s.turnover = s.vol * price
        s.cs, s.seq = rng.randint(10**9, 10**11), rng.randint(10**9, 10**11)
        out.append(s)
    return out


def _size(s: _Symbol, rng: random.Random) -> str:
    return _fmt(max(rng.expovariate(1.0) * 10 ** (3 - s.qdec), 10.0**-s.qdec), s.qdec)


def _ticker_snapshot(s: _Symbol, ts: int, rng: random.Random) -> dict[str, Any]:
    bid, ask = max(s.bids), min(s.asks)
    p = s.pdec
    data = {
        "symbol": s.name, "tickDirection": rng.choice(_TICKS),
        "price24hPcnt": _fmt((s.price - s.prev24) / s.prev24, 6), "lastPrice": _fmt(s.price, p),
        "prevPrice24h": _fmt(s.prev24, p), "highPrice24h": _fmt(s.high, p), "lowPrice24h": _fmt(s.low, p),
        "prevPrice1h": _fmt(s.price * rng.uniform(0.99, 1.01), p), "markPrice": _fmt(s.mark, p),
        "indexPrice": _fmt(s.mark, p), "openInterest": _fmt(s.oi, s.qdec),
        "openInterestValue": _fmt(s.oi * s.mark, 2), "turnover24h": _fmt(s.turnover, 4),
        "volume24h": _fmt(s.vol, s.qdec), "nextFundingTime": str((ts // 28_800_000 + 1) * 28_800_000),
        "fundingRate": _fmt(rng.uniform(-5e-4, 5e-4), 6), "bid1Price": _fmt(bid, p), "bid1Size": s.bids[bid],
        "ask1Price": _fmt(ask, p), "ask1Size": s.asks[ask], "preOpenPrice": "", "preQty": "",
        "curPreListingPhase": "", "fundingIntervalHour": "8", "fundingCap": "0.005",
    }  # fmt: skip
    s.cs += 1
    return {"topic": f"tickers.{s.name}", "type": "snapshot", "data": data, "cs": s.cs, "ts": ts}


def _ticker_delta(s: _Symbol, ts: int, rng: random.Random) -> dict[str, Any]:
    data: dict[str, str] = {"symbol": s.name}
    p = s.pdec
    groups = rng.choices(("bbo", "mark", "trade", "oi"), weights=(45, 25, 20, 10), k=rng.choice((1, 1, 2, 3)))
    for group in dict.fromkeys(groups):
        if group == "bbo":
            bid, ask = max(s.bids), min(s.asks)
            if rng.random() < 0.6:
                data["bid1Price"] = _fmt(bid, p)
            data["bid1Size"] = s.bids[bid]
            if rng.random() < 0.6:
                data["ask1Price"] = _fmt(ask, p)
            data["ask1Size"] = s.asks[ask]
        elif group == "mark":
            s.mark = s.price + rng.uniform(-2, 2) * s.tick
            data["markPrice"] = _fmt(s.mark, p)
            data["indexPrice"] = _fmt(s.price + rng.uniform(-3, 3) * s.tick, p)
            if rng.random() < 0.5:
                data["openInterestValue"] = _fmt(s.oi * s.mark, 2)
        elif group == "trade":
            qty = float(_size(s, rng))
            s.vol += qty
            s.turnover += qty * s.price
            data["tickDirection"] = rng.choice(_TICKS)
            data["lastPrice"] = _fmt(s.price, p)
            data["price24hPcnt"] = _fmt((s.price - s.prev24) / s.prev24, 6)
            data["turnover24h"] = _fmt(s.turnover, 4)
            data["volume24h"] = _fmt(s.vol, s.qdec)
            if s.price > s.high:
                s.high = s.price
                data["highPrice24h"] = _fmt(s.high, p)
        else:
            s.oi *= rng.uniform(0.999, 1.001)
            data["openInterest"] = _fmt(s.oi, s.qdec)
            data["openInterestValue"] = _fmt(s.oi * s.mark, 2)
    s.cs += 1
    return {"topic": f"tickers.{s.name}", "type": "delta", "data": data, "cs": s.cs, "ts": ts}


def _book(s: _Symbol, ts: int, kind: str, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    s.u += 1
    s.seq += 7
    data = {"s": s.name, "b": bids, "a": asks, "u": s.u, "seq": s.seq}
    return {"topic": f"orderbook.50.{s.name}", "type": kind, "ts": ts, "data": data, "cts": ts - 3}


def _book_snapshot(s: _Symbol, ts: int, rng: random.Random) -> dict[str, Any]:
    best_bid = round(s.price / s.tick) * s.tick - s.tick
    s.bids = {round(best_bid - i * s.tick, s.pdec): _size(s, rng) for i in range(50)}
    s.asks = {round(best_bid + (i + 1) * s.tick, s.pdec): _size(s, rng) for i in range(50)}
    bids = [[_fmt(p, s.pdec), q] for p, q in sorted(s.bids.items(), reverse=True)]
    asks = [[_fmt(p, s.pdec), q] for p, q in sorted(s.asks.items())]
    return _book(s, ts, "snapshot", bids, asks)


def _side_delta(
    s: _Symbol, side: dict[float, str], is_bid: bool, k: int, rng: random.Random
) -> list[list[str]]:
    before = {_fmt(p, s.pdec) for p in side}
    changes: dict[str, list[str]] = {}  # by price text: a real delta names each price once, the last wins

    def beyond_worst() -> float:
        worst = min(side) if is_bid else max(side)
        return round(worst - s.tick if is_bid else worst + s.tick, s.pdec)

    for _ in range(k):
        r = rng.random()
        if r < 0.55:  # a new size for a level
            price = rng.choice(list(side))
        elif r < 0.8 and len(side) > 45:  # a level gone: size "0"
            price = rng.choice(list(side))
            del side[price]
            changes[_fmt(price, s.pdec)] = [_fmt(price, s.pdec), "0"]
            continue
        else:  # a level added past the worst
            price = beyond_worst()
        side[price] = _size(s, rng)
        changes[_fmt(price, s.pdec)] = [_fmt(price, s.pdec), side[price]]
    while len(side) > 50:  # 50 levels at most: the worst falls off, announced
        worst = min(side) if is_bid else max(side)
        del side[worst]
        changes[_fmt(worst, s.pdec)] = [_fmt(worst, s.pdec), "0"]
    # a level added and gone within one delta never existed for the client
    return [lvl for lvl in changes.values() if not (lvl[1] == "0" and lvl[0] not in before)]


def _book_delta(s: _Symbol, ts: int, rng: random.Random) -> dict[str, Any]:
    kb, ka = min(15, int(rng.expovariate(1 / 2.5))), min(15, int(rng.expovariate(1 / 2.5)))
    bids = _side_delta(s, s.bids, True, kb or (0 if ka else 1), rng)
    asks = _side_delta(s, s.asks, False, ka, rng)
    return _book(s, ts, "delta", bids, asks)


def _trades(s: _Symbol, ts: int, rng: random.Random) -> dict[str, Any]:
    rows = []
    for _ in range(min(20, 1 + int(rng.expovariate(1 / 1.2)))):
        s.seq += 1
        rows.append({
            "T": ts - rng.randint(0, 5), "s": s.name, "S": rng.choice(("Buy", "Sell")), "v": _size(s, rng),
            "p": _fmt(s.price, s.pdec), "L": rng.choice(_TICKS),
            "i": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "BT": False, "RPI": False, "seq": s.seq,
        })  # fmt: skip
    return {"topic": f"publicTrade.{s.name}", "type": "snapshot", "ts": ts, "data": rows}


@dataclass(frozen=True)
class Stream:
    messages: list[bytes]  # every message, in order: the snapshots first
    symbols: list[str]


def make_stream(n: int, seed: int = 1234, n_symbols: int = N_SYMBOLS) -> Stream:
    """At least `n` messages (two snapshots per symbol, then updates); never cycled, so state stays real."""
    rng = random.Random(seed)
    syms = _symbols(rng, n_symbols)
    ts = START_MS
    msgs = []
    for s in syms:
        book = _book_snapshot(s, ts, rng)
        msgs += [_dumps(_ticker_snapshot(s, ts, rng)), _dumps(book)]
        ts += 1
    weights = [1 / (i + 1) ** 0.8 for i in range(n_symbols)]
    while len(msgs) < n:
        s = rng.choices(syms, weights=weights)[0]
        ts += rng.randint(0, 2)
        s.price = max(s.tick, s.price + rng.choice((-2, -1, -1, 0, 0, 0, 1, 1, 2)) * s.tick)
        kind = rng.choices(("ticker", "book", "trade"), weights=(35, 50, 15))[0]
        make = _ticker_delta if kind == "ticker" else _book_delta if kind == "book" else _trades
        msgs.append(_dumps(make(s, ts, rng)))
    return Stream(msgs, [s.name for s in syms])


def symbols(seed: int = 1234, n_symbols: int = N_SYMBOLS) -> list[str]:
    """The stream's symbols without building it."""
    return [s.name for s in _symbols(random.Random(seed), n_symbols)]


def topics_for(names: list[str]) -> tuple[str, ...]:
    return tuple(t for s in names for t in (f"tickers.{s}", f"orderbook.50.{s}", f"publicTrade.{s}"))


def end_marker() -> bytes:
    """The message that ends a push: one trade on `END_TOPIC` (a client that subscribed to it sees it as
    a normal `publicTrade` message; it is not counted)."""
    row = {"T": START_MS + 999_999, "s": "ZZGOUSDT", "S": "Buy", "v": "1", "p": "1.0", "L": "PlusTick",
           "i": "00000000-0000-4000-8000-000000000000", "BT": False, "RPI": False, "seq": 1}  # fmt: skip
    return _dumps({"topic": END_TOPIC, "type": "snapshot", "ts": START_MS + 999_999, "data": [row]})


if __name__ == "__main__":
    st = make_stream(20_000)
    sizes = [len(frame(m)) for m in st.messages]
    print(f"{len(sizes)} messages, {len(st.symbols)} symbols, mean frame {sum(sizes) / len(sizes):.0f} B")
