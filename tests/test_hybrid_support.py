"""Builders for the join's tests: variants of the real Bybit samples, decoded by the real codec.

Every message handed to the DataPlane here goes through `bybit_hybrid_core._codec.decode`, so the tests
exercise the same Structs the core sees. Variants start from a real sample and change only the fields a
test is about (msgspec/json round trip).
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from bybit_hybrid_core._codec import decode
from bybit_hybrid_core._config import Config, Credentials, Link, Timings
from bybit_hybrid_core._events import Action, Event, FetchPositions
from bybit_hybrid_core._plane.plane import DataPlane
from repo_paths import SAMPLES

API_KEY = "test-key-0123456789"
API_SECRET = "test-secret-abcdefghijklmnop"
WALL0 = 1_790_000_000_000


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def decoded(obj: dict[str, Any]) -> Any:
    return decode(json.dumps(obj).encode())


_POSITION = sample("private-position-linear-real-2025.json")
_TICKER = sample("public-tickers-linear-snapshot-real.json")
_REST = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {"list": [], "nextPageCursor": "", "category": "linear"},
    "retExtInfo": {},
    "time": WALL0,
}


def position_row(
    symbol: str,
    side: str,
    size: str,
    entry: str,
    seq: int,
    *,
    idx: int = 0,
    category: str = "linear",
    mark: str = "",
    updated: int = 1_790_000_000_000,
    **extra: Any,
) -> dict[str, Any]:
    """A WS position row: the real 2025 XRPUSDT row with these fields replaced."""
    row: dict[str, Any] = copy.deepcopy(_POSITION["data"][0])
    row.update(
        symbol=symbol,
        side=side,
        size=size,
        entryPrice=entry,
        seq=seq,
        positionIdx=idx,
        category=category,
        markPrice=mark or entry,
        updatedTime=str(updated),
    )
    row.update(extra)
    return row


def position_message(*rows: dict[str, Any], creation: int = WALL0) -> Any:
    msg = copy.deepcopy(_POSITION)
    msg["data"] = list(rows)
    msg["creationTime"] = creation
    return decoded(msg)


def ticker_snapshot(symbol: str, mark: str, ts: int, cs: int | None = 1, **fields: Any) -> Any:
    """A full linear ticker snapshot (the real BTCUSDT one) for `symbol` at `mark`."""
    msg = copy.deepcopy(_TICKER)
    msg["topic"] = f"tickers.{symbol}"
    msg["data"].update(symbol=symbol, markPrice=mark, **fields)
    msg["ts"] = ts
    if cs is None:
        del msg["cs"]
    else:
        msg["cs"] = cs
    return decoded(msg)


def ticker_delta(symbol: str, ts: int, cs: int | None = 1, **fields: Any) -> Any:
    msg: dict[str, Any] = {
        "topic": f"tickers.{symbol}",
        "type": "delta",
        "data": {"symbol": symbol, **fields},
    }
    msg["ts"] = ts
    if cs is not None:
        msg["cs"] = cs
    return decoded(msg)


def rest_row(
    symbol: str, side: str, size: str, avg: str, seq: int, *, idx: int = 0, mark: str = ""
) -> dict[str, Any]:
    """A `/v5/position/list` row: the WS row's fields with REST's spelling (`avgPrice`, no category)."""
    row = position_row(symbol, side, size, avg, seq, idx=idx, mark=mark)
    del row["entryPrice"], row["category"]
    row["avgPrice"] = avg
    return row


def rest_body(category: str, rows: list[dict[str, Any]], cursor: str = "", **top: Any) -> bytes:
    answer = copy.deepcopy(_REST)
    answer["result"].update(list=rows, nextPageCursor=cursor, category=category)
    answer.update(top)
    return json.dumps(answer).encode()


def make_config(seed: int = 0, **timings: Any) -> Config:
    return Config(
        credentials=Credentials(API_KEY, API_SECRET),
        position_categories=("linear", "inverse"),
        settle_coins=("USDT",),
        timings=Timings(**timings),
        seed=seed,
    )


class Plane:
    """A DataPlane with its outputs collected."""

    def __init__(self, config: Config | None = None) -> None:
        self.events: list[Event] = []
        self.actions: list[Action] = []
        self.resubscribes: list[tuple[Link, str, str]] = []  # (link, topic, reason) the plane asked for
        self.dp = DataPlane(
            config or make_config(),
            self.events.append,
            self.actions.append,
            lambda link, topic, reason: self.resubscribes.append((link, topic, reason)),
        )

    def take(self) -> list[Event]:
        out, self.events[:] = list(self.events), []
        return out

    def fetches(self) -> list[FetchPositions]:
        out = [a for a in self.actions if isinstance(a, FetchPositions)]
        self.actions.clear()
        return out

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def up_private(self, now: float = 0.0) -> list[FetchPositions]:
        self.dp.on_link_up(Link.PRIVATE, now, WALL0 + int(now * 1000))
        self.dp.on_subscribed(Link.PRIVATE, ("position",), now)  # the snapshot waits for this ack
        return self.fetches()


D = Decimal
