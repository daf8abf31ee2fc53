"""Codec benchmark: `bybit_hybrid_core._codec.decode` vs a pybit-style peer, side by side in one run.

    python bench/bench_decode.py [--messages 20000] [--repeat 5] [--seed 7]

The stream is generated (seeded) in Bybit's real wire shapes (BYBIT_V5.md §5): linear ticker snapshots and
small deltas, orderbook.50 snapshots then deltas, and publicTrade bursts, as compact JSON in UTF-8 bytes
(what the link hands `decode`: its frame reader passes payloads up undecoded). The peer does what an SDK
that hands dicts to users does, plus what a user must then do to get money right: `json.loads`, dict
access, `Decimal(...)` of the same fields the codec converts, `""` -> None. "json.loads only" is the floor
of any dict-based approach (no Decimal at all).
Not a test: it prints µs/message, messages/s and the ratio, per family and for the whole stream.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

from bybit_hybrid_core.codec import decode, vet_numbers

SAMPLES = Path(
    os.environ.get("BYBIT_SAMPLES_DIR", Path(__file__).resolve().parents[1] / "tests/samples/bybit-v5")
)

SYMBOLS = {"BTCUSDT": 63561.6, "ETHUSDT": 3120.45, "SOLUSDT": 146.213, "XRPUSDT": 0.5873, "DOGEUSDT": 0.12345}
TICKER_DECIMALS = (
    "price24hPcnt",
    "lastPrice",
    "prevPrice24h",
    "highPrice24h",
    "lowPrice24h",
    "prevPrice1h",
    "markPrice",
    "indexPrice",
    "openInterest",
    "openInterestValue",
    "turnover24h",
    "volume24h",
    "fundingRate",
    "bid1Price",
    "bid1Size",
    "ask1Price",
    "ask1Size",
    "fundingCap",
    "preOpenPrice",
    "preQty",
)
TICKER_INTS = ("nextFundingTime", "fundingIntervalHour")
DELTA_FIELDS = ("markPrice", "indexPrice", "lastPrice", "bid1Price", "bid1Size", "ask1Price", "ask1Size",
                "openInterestValue", "turnover24h", "volume24h", "price24hPcnt")  # fmt: skip


# --------------------------------------------------------------------------------------- the stream


def _px(rng: Random, mid: float) -> str:
    return (
        f"{mid * (1 + rng.uniform(-0.002, 0.002)):.2f}"
        if mid > 10
        else f"{mid * (1 + rng.uniform(-0.002, 0.002)):.5f}"
    )


def _ticker(rng: Random, sym: str, mid: float, ts: int, cs: int, snapshot: bool) -> dict[str, Any]:
    if snapshot:
        data: dict[str, Any] = {"symbol": sym, "tickDirection": "ZeroPlusTick", "curPreListingPhase": ""}
        for key in TICKER_DECIMALS:
            data[key] = "" if key in ("preOpenPrice", "preQty") else _px(rng, mid)
        data |= {"nextFundingTime": str(ts + 3_600_000), "fundingIntervalHour": "8", "fundingRate": "0.0001"}
    else:
        data = {"symbol": sym}
        for key in rng.sample(DELTA_FIELDS, rng.randint(1, 5)):
            data[key] = _px(rng, mid)
    kind = "snapshot" if snapshot else "delta"
    return {"topic": f"tickers.{sym}", "type": kind, "data": data, "cs": cs, "ts": ts}


def _levels(rng: Random, mid: float, side: int, n: int, deletes: bool) -> list[list[str]]:
    out = []
    for i in range(n):
        size = "0" if deletes and rng.random() < 0.3 else f"{rng.uniform(0.001, 25):.3f}"
        out.append([_px(rng, mid * (1 + side * 0.0001 * (i + 1))), size])
    return out


def _book(rng: Random, sym: str, mid: float, ts: int, u: int, snapshot: bool) -> dict[str, Any]:
    n = 50 if snapshot else rng.randint(0, 8)
    m = 50 if snapshot else rng.randint(0, 8)
    data = {"s": sym, "b": _levels(rng, mid, -1, n, not snapshot), "a": _levels(rng, mid, 1, m, not snapshot),
            "u": u, "seq": u * 7}  # fmt: skip
    kind = "snapshot" if snapshot else "delta"
    return {"topic": f"orderbook.50.{sym}", "type": kind, "ts": ts, "data": data, "cts": ts - 2}


def _trades(rng: Random, sym: str, mid: float, ts: int, seq: int) -> dict[str, Any]:
    rows = [
        {
            "T": ts - 1,
            "s": sym,
            "S": rng.choice(("Buy", "Sell")),
            "v": f"{rng.uniform(0.001, 2):.3f}",
            "p": _px(rng, mid),
            "L": rng.choice(("PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick")),
            "i": f"{rng.getrandbits(128):032x}",
            "BT": False,
            "RPI": False,
            "seq": seq,
        }
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5, 9)))
    ]
    return {"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": ts, "data": rows}


def make_stream(n: int, seed: int) -> list[tuple[str, bytes]]:
    """(family, frame) pairs: ~45% ticker deltas, ~35% book deltas, ~18% trades, the rest snapshots."""
    rng = Random(seed)
    ts, u, frames = 1_786_659_827_000, 1000, []
    for sym, mid in SYMBOLS.items():  # every subscription starts with snapshots
        frames.append(("ticker", _ticker(rng, sym, mid, ts, u, True)))
        frames.append(("book", _book(rng, sym, mid, ts, u, True)))
    while len(frames) < n:
        ts += rng.randint(1, 20)
        u += 1
        sym = rng.choice(list(SYMBOLS))
        mid = SYMBOLS[sym]
        roll = rng.random()
        if roll < 0.45:
            frames.append(("ticker", _ticker(rng, sym, mid, ts, u, rng.random() < 0.01)))
        elif roll < 0.80:
            frames.append(("book", _book(rng, sym, mid, ts, u, rng.random() < 0.005)))
        else:
            frames.append(("trade", _trades(rng, sym, mid, ts, u)))
    return [(family, json.dumps(frame, separators=(",", ":")).encode()) for family, frame in frames[:n]]


# ------------------------------------------------------------------------------------------- the peer


def _dec(value: str) -> Decimal | None:
    return Decimal(value) if value != "" else None


def peer(frame: bytes) -> Any:
    """pybit hands `json.loads(frame)` to a callback; the user then types the money fields."""
    msg = json.loads(frame)
    topic = msg["topic"]
    data = msg["data"]
    if topic.startswith("tickers."):
        out: dict[str, Any] = {"symbol": data["symbol"]}
        for key, value in data.items():
            if key in TICKER_INTS:
                out[key] = int(value) if value != "" else None
            elif key not in ("symbol", "tickDirection", "curPreListingPhase"):
                out[key] = _dec(value)
        return msg["type"], msg["ts"], msg.get("cs"), out
    if topic.startswith("orderbook."):
        bids = [(Decimal(p), Decimal(s)) for p, s in data["b"]]
        asks = [(Decimal(p), Decimal(s)) for p, s in data["a"]]
        return msg["type"], msg["ts"], data["u"], data["seq"], bids, asks
    if topic.startswith("publicTrade."):
        return [(t["T"], t["s"], t["S"], Decimal(t["v"]), Decimal(t["p"]), t.get("L"), t["i"]) for t in data]
    return msg


def json_only(frame: bytes) -> Any:
    return json.loads(frame)


# --------------------------------------------------------------------------------------------- timing


def _best(fn: Callable[[bytes], Any], frames: Iterable[bytes], repeat: int) -> float:
    frames = list(frames)
    best = float("inf")
    for _ in range(repeat):
        # CPU time of this process, not wall time: on a shared machine other processes only stretch the
        # wall clock. Best of `repeat` filters cache and scheduler noise.
        start = time.process_time()
        for frame in frames:
            fn(frame)
        best = min(best, time.process_time() - start)
    return best / len(frames)


def _row(label: str, count: int, ours: float, theirs: float, floor: float) -> str:
    return (
        f"{label:<8}{count:>7}  {ours * 1e6:>8.2f} {1 / ours:>11,.0f}"
        f"  {theirs * 1e6:>8.2f} {1 / theirs:>11,.0f}  {theirs / ours:>6.2f}x  {floor * 1e6:>8.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    stream = make_stream(args.messages, args.seed)
    for _, frame in stream:  # both sides must agree on what they read before we time them
        assert type(decode(frame)).__name__.endswith("Message"), frame
        peer(frame)
    size = sum(len(f) for _, f in stream) / len(stream)
    print(
        f"python {sys.version.split()[0]}, {len(stream)} messages (seed {args.seed}), {size:.0f} B average,"
        f" best of {args.repeat}, CPU time"
    )
    print(f"{'':<8}{'count':>7}  {'decode µs':>8} {'msg/s':>11}  {'peer µs':>8} {'msg/s':>11}  {'ratio':>7}  "
          f"{'json.loads µs':>8}")  # fmt: skip
    families = ("ticker", "book", "trade")
    for family in families:
        frames = [f for fam, f in stream if fam == family]
        ours = _best(decode, frames, args.repeat)
        theirs = _best(peer, frames, args.repeat)
        floor = _best(json_only, frames, args.repeat)
        print(_row(family, len(frames), ours, theirs, floor))
    frames = [f for _, f in stream]
    ours = _best(decode, frames, args.repeat)
    theirs = _best(peer, frames, args.repeat)
    floor = _best(json_only, frames, args.repeat)
    print(_row("all", len(frames), ours, theirs, floor))
    print("ratio = peer time / decode time (above 1: decode is faster)")
    for family in families:
        frames = [f for fam, f in stream if fam == family]
        messages = [decode(f) for f in frames]
        gate = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            for msg in messages:
                vet_numbers(msg)
            gate = min(gate, time.process_time() - start)
        gate /= len(messages)
        print(f"of decode's {family} time, {gate * 1e6:.2f} µs is vetting the numbers (finite, sane, signed"
              " right, no bare numbers; the peer checks nothing)")  # fmt: skip
    position = (SAMPLES / "private-position-linear-real-2025.json").read_bytes() if SAMPLES.exists() else None
    if position is not None:
        frame = json.dumps(json.loads(position), separators=(",", ":")).encode()
        each = _best(decode, [frame] * 2000, args.repeat)
        print(f"position (a real push): {each * 1e6:.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
