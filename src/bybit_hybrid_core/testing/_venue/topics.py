"""Which public topics exist on which category (BYBIT_V5.md §4-§5).

A topic the venue does not deliver is unknown, and the exchange answers `error:handler not found,topic:...`.
Depths: linear, inverse and spot books are 1/50/200/1000 deep; option books 25/100 (option acks for other
depths are silent on the real venue, §4). Option trades are per base coin (`publicTrade.BTC`). Option klines
are silent on the real venue and allLiquidation is linear/inverse only, so neither exists here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple

from .instruments import Instrument
from .tape import INTERVALS

__all__ = ["BOOK_DEPTHS", "Topic", "parse_topic"]

BOOK_DEPTHS: dict[str, tuple[int, ...]] = {
    "linear": (1, 50, 200, 1000),
    "inverse": (1, 50, 200, 1000),
    "spot": (1, 50, 200, 1000),
    "option": (25, 100),
}


class Topic(NamedTuple):
    """A parsed public topic. `symbol` is the base coin for option trades; `param` a depth or interval."""

    kind: str  # "tickers" | "orderbook" | "publicTrade" | "kline" | "allLiquidation"
    category: str
    symbol: str
    param: str = ""


def parse_topic(
    category: str,
    topic: str,
    instruments: Mapping[tuple[str, str], Instrument],
    option_bases: Collection[str],
) -> Topic | None:
    """The topic if `category`'s public stream delivers it, else None. Symbols are case-sensitive (§4)."""
    parts = topic.split(".")
    kind = parts[0]
    if category not in BOOK_DEPTHS or len(parts) not in (2, 3):
        return None
    symbol = parts[-1]
    if len(parts) == 2:
        if kind == "publicTrade" and category == "option":
            return Topic(kind, category, symbol) if symbol in option_bases else None
        known = (category, symbol) in instruments
        if kind in ("tickers", "publicTrade") and known:
            return Topic(kind, category, symbol)
        if kind == "allLiquidation" and known and category in ("linear", "inverse"):
            return Topic(kind, category, symbol)
        return None
    param = parts[1]
    if (category, symbol) not in instruments:
        return None
    if kind == "orderbook" and param.isdigit() and int(param) in BOOK_DEPTHS[category] and param[0] != "0":
        return Topic(kind, category, symbol, param)
    if kind == "kline" and param in INTERVALS and category != "option":
        return Topic(kind, category, symbol, param)
    return None
