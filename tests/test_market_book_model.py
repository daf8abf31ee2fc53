"""Order books against a dict model across snapshots *and* deltas (snapshots with zero sizes and repeated
prices too, prices in several spellings), guarding the sides of `_plane.books` (parallel sorted lists found
by bisect, a snapshot taken as sorted when its levels allow it, else applied in order) and the rebuild of a
book a delta does not fit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from unittest.mock import ANY

from hypothesis import given
from hypothesis import strategies as st

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._events import OrderbookUpdate, ProtocolProblem
from test_hybrid_support import Plane, decoded

D = Decimal
_PRICES = st.integers(1, 40).map(lambda n: D(n) / 4)
_SIZES = st.sampled_from([D(0), D("0.5"), D(1), D("2.5")])
_LEVELS = st.lists(st.tuples(_PRICES, _SIZES), max_size=10)
_MESSAGES = st.lists(st.tuples(st.booleans(), _LEVELS, _LEVELS), min_size=1, max_size=12)
_PLACES = st.lists(st.integers(2, 4), min_size=20, max_size=20)  # "2.5" as "2.50", "2.500", "2.5000"


def _spelled(levels: list[tuple[Decimal, Decimal]], places: list[int]) -> list[list[str]]:
    """The wire's [price, size] strings, each price with its own number of decimals (equal values)."""
    spelled = zip(levels, places, strict=False)
    return [[str(p.quantize(Decimal(1).scaleb(-k))), str(s)] for (p, s), k in spelled]


def _apply(side: dict[Decimal, Decimal], levels: list[tuple[Decimal, Decimal]], reset: bool) -> bool:
    """Apply like Bybit's rules; False when a delta deletes a price the side does not hold."""
    if reset:
        side.clear()
    fits = True
    for price, size in levels:
        if size == 0:
            fits = side.pop(price, None) is not None and fits
        else:
            side[price] = size
    return reset or fits


@given(_MESSAGES, _PLACES)
def test_snapshots_and_deltas_match_a_dict_model(
    messages: list[tuple[bool, Any, Any]], places: list[int]
) -> None:
    """Random snapshots and deltas against a dict model, including deltas that do not fit the book (a delete
    of a price it does not hold, a crossed book after applying): those drop the book and ask for a fresh
    snapshot, and the deltas until it arrives are ignored."""
    plane = Plane()
    model: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = ({}, {})
    held = False
    for u, (snapshot, bids, asks) in enumerate(messages, start=2):
        kind = "snapshot" if snapshot or u == 2 else "delta"
        data = {"s": "X", "u": u, "b": _spelled(bids, places), "a": _spelled(asks, places[::-1])}
        plane.dp.on_message(
            Link.LINEAR, decoded({"topic": "orderbook.50.X", "type": kind, "ts": u, "data": data}), 1.0
        )
        events = plane.take()
        if kind == "delta" and not held:
            assert events == [] and plane.dp.orderbook("linear", "X", 50) is None  # awaits its snapshot
            continue
        fits = _apply(model[0], bids, kind == "snapshot")
        fits = _apply(model[1], asks, kind == "snapshot") and fits
        crossed = bool(model[0] and model[1]) and max(model[0]) >= min(model[1])
        if kind == "delta" and (not fits or crossed):
            [problem] = events
            assert isinstance(problem, ProtocolProblem) and "dropped" in problem.detail
            assert plane.dp.orderbook("linear", "X", 50) is None
            assert plane.resubscribes.pop() == (Link.LINEAR, "orderbook.50.X", ANY)
            held = False
            continue
        held = True
        [event] = events
        assert isinstance(event, OrderbookUpdate) and event.snapshot == (kind == "snapshot")
        held_bids, held_asks = plane.dp.orderbook("linear", "X", 50) or ((), ())
        assert held_bids == tuple(sorted(model[0].items(), reverse=True))
        assert held_asks == tuple(sorted(model[1].items()))
        assert event.best_bid == (held_bids[0] if held_bids else None)
        assert event.best_ask == (held_asks[0] if held_asks else None)
    assert plane.resubscribes == []  # one request per broken book


def test_equal_prices_in_other_spellings_are_one_level() -> None:
    plane = Plane()
    snap = {"s": "X", "u": 5, "b": [["10.50", "1"], ["10.4", "2"]], "a": [["11", "1"]]}
    plane.dp.on_message(
        Link.LINEAR, decoded({"topic": "orderbook.50.X", "type": "snapshot", "ts": 1, "data": snap}), 1.0
    )
    delta = {"s": "X", "u": 6, "b": [["10.5", "3"], ["10.40", "0"]], "a": [["11.000", "0"], ["11.5", "4"]]}
    plane.dp.on_message(
        Link.LINEAR, decoded({"topic": "orderbook.50.X", "type": "delta", "ts": 2, "data": delta}), 1.0
    )
    [_, event] = plane.take()
    assert plane.dp.orderbook("linear", "X", 50) == (((D("10.50"), D(3)),), ((D("11.5"), D(4)),))
    assert event.best_bid == (D("10.5"), D(3)) and event.best_ask == (D("11.5"), D(4))
