"""Market state: merged tickers (snapshot + delta, ordering, staleness), order books, pass-through topics."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._events import (
    KlineUpdate,
    Liquidations,
    OrderbookUpdate,
    ProtocolProblem,
    PublicTrades,
    TickerUpdate,
    TopicData,
)
from bybit_hybrid_core._market_book import book_depth
from test_hybrid_support import Plane, decoded, sample, ticker_delta, ticker_snapshot

D = Decimal


def _feed(plane: Plane, link: Link, obj: dict[str, Any] | Any, now: float = 1.0) -> list[Any]:
    msg = decoded(obj) if isinstance(obj, dict) else obj
    plane.dp.on_message(link, msg, now)
    return plane.take()


# ---------------------------------------------------------------------------------------------- tickers


def test_real_snapshot_then_real_deltas_merge() -> None:
    plane = Plane()
    [snap] = _feed(plane, Link.LINEAR, sample("public-tickers-linear-snapshot-real.json"))
    assert isinstance(snap, TickerUpdate) and snap.snapshot and snap.cs == 764144442982
    assert snap.ticker.mark_price == D("63560.80") and snap.ticker.index_price == D("63585.51")
    [delta] = _feed(plane, Link.LINEAR, sample("public-tickers-linear-delta-real.json"))
    assert isinstance(delta, TickerUpdate) and not delta.snapshot and delta.ts == 1786659827983
    merged = delta.ticker
    assert merged.index_price == D("63585.74")  # changed by the delta
    assert merged.mark_price == D("63560.80")  # absent from the delta: unchanged
    assert merged.bid1_price == D("63561.50") and merged.funding_rate == D("0.00005013")
    [delta2] = _feed(plane, Link.LINEAR, sample("public-tickers-linear-delta-real-2.json"))
    assert delta2.ticker.mark_price == D("86716.30") and delta2.ticker.last_price == D("63561.60")
    assert plane.dp.ticker("BTCUSDT") == delta2.ticker == plane.dp.ticker("BTCUSDT", "linear")
    assert plane.dp.ticker("BTCUSDT", "inverse") is None


def test_xrp_pair_merges_many_fields() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, sample("public-tickers-linear-snapshot-real-2025.json"))
    [update] = _feed(plane, Link.LINEAR, sample("public-tickers-linear-delta-real-2025.json"))
    t = update.ticker
    assert (t.last_price, t.ask1_price, t.ask1_size, t.bid1_price) == (
        D("3.3298"),
        D("3.3298"),
        D(1113),
        D("3.3297"),
    )
    assert t.mark_price == D("3.2017")


def test_empty_string_means_not_applicable_and_overwrites() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=5))
    [update] = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=11, cs=6, fundingRate=""))
    assert update.ticker.funding_rate is None and update.ticker.mark_price == D(100)


def test_older_messages_are_ignored() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=5))
    _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=20, cs=7, markPrice="101"))
    assert _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=30, cs=6, markPrice="90")) == []  # lower cs
    assert (
        _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=19, cs=7, markPrice="91")) == []
    )  # same cs, older
    assert _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "92", ts=9, cs=5)) == []  # older snapshot
    assert plane.dp.ticker("BTCUSDT").mark_price == D(101)  # type: ignore[union-attr]
    # same cs, later ts: a mark-only move between trades is news
    [update] = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=21, cs=7, markPrice="102"))
    assert update.ticker.mark_price == D(102)


def test_a_delta_before_any_snapshot_is_reported_and_builds_nothing() -> None:
    plane = Plane()
    [problem] = _feed(plane, Link.LINEAR, sample("public-tickers-linear-delta-real.json"))
    assert isinstance(problem, ProtocolProblem) and "before any snapshot" in problem.detail
    assert plane.dp.ticker("BTCUSDT") is None


def test_after_link_down_deltas_wait_for_the_new_snapshot() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=50))
    plane.dp.on_link_down(Link.LINEAR, 2.0)
    [problem] = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=11, cs=51, markPrice="105"))
    assert isinstance(problem, ProtocolProblem)
    assert plane.dp.ticker("BTCUSDT").mark_price == D(100)  # type: ignore[union-attr]  # last known, stale
    # a fresh stream may restart its sequence: the new snapshot is taken whatever its cs
    [update] = _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "106", ts=12, cs=3))
    assert update.snapshot and update.ticker.mark_price == D(106)
    [update] = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=13, cs=4, markPrice="107"))
    assert update.ticker.mark_price == D(107)


def test_other_links_going_down_leave_a_ticker_alone() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=50))
    plane.dp.on_link_down(Link.INVERSE, 2.0)
    plane.dp.on_link_down(Link.PRIVATE, 2.0)
    [update] = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=11, cs=51, markPrice="105"))
    assert isinstance(update, TickerUpdate)


def test_spot_tickers_are_snapshot_only() -> None:
    plane = Plane()
    spot = sample("public-tickers-spot-snapshot-docs.json")
    [first] = _feed(plane, Link.SPOT, spot)
    assert first.category == "spot" and first.ticker.usd_index_price == D("21120.2400136")
    assert first.ticker.mark_price is UNSET  # spot has no mark price
    later = copy.deepcopy(spot)
    later["ts"] += 50
    del later["data"]["usdIndexPrice"]
    [second] = _feed(plane, Link.SPOT, later)
    assert second.snapshot and second.ticker.usd_index_price is UNSET  # replaced, not merged


def test_option_tickers_have_no_cs_and_order_by_ts() -> None:
    plane = Plane()
    option = sample("public-tickers-option-snapshot-real-2026.json")
    [first] = _feed(plane, Link.OPTION, option)
    assert (
        first.cs is None
        and first.ticker.mark_price == D(24465)
        and first.ticker.underlying_price == D("86977.1")
    )
    older = copy.deepcopy(option)
    older["ts"] -= 100
    older["data"]["markPrice"] = "1"
    assert _feed(plane, Link.OPTION, older) == []
    newer = copy.deepcopy(option)
    newer["ts"] += 100
    newer["data"]["markPrice"] = "24470"
    [update] = _feed(plane, Link.OPTION, newer)
    assert update.ticker.mark_price == D(24470)
    assert plane.dp.ticker("BTC-25JUN27-106000-P-USDT") == update.ticker


def test_the_mark_remembers_the_message_that_carried_it() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=50), now=1.0)
    _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=20, cs=51, indexPrice="99"), now=2.0)
    state = plane.dp._market.tickers.get("linear", "BTCUSDT")
    assert state is not None
    assert (state.mark, state.mark_ts, state.mark_at, state.last_at) == (D(100), 10, 1.0, 2.0)


# -------------------------------------------------------------------------------------------- orderbooks


def test_real_l50_snapshot_and_delta() -> None:
    plane = Plane()
    snapshot = sample("public-orderbook-linear-l50-snapshot-real.json")
    [event] = _feed(plane, Link.LINEAR, snapshot)
    assert isinstance(event, OrderbookUpdate) and event.snapshot and event.depth == 50
    assert event.best_bid == (D("71423.80"), D("0.557")) and event.best_ask == (D("71423.90"), D("4.669"))
    delta = sample("public-orderbook-linear-l50-delta-real.json")
    [event] = _feed(plane, Link.LINEAR, delta)
    assert not event.snapshot and event.u == 10132541 and len(event.bids) == 11
    book = plane.dp.orderbook("linear", "BTCUSDT", 50)
    assert book is not None
    bids, asks = book
    model_bids = {D(p): D(s) for p, s in snapshot["data"]["b"]}
    model_asks = {D(p): D(s) for p, s in snapshot["data"]["a"]}
    for side, levels in ((model_bids, delta["data"]["b"]), (model_asks, delta["data"]["a"])):
        for p, s in levels:
            if D(s) == 0:
                side.pop(D(p), None)
            else:
                side[D(p)] = D(s)
    assert bids == tuple(sorted(model_bids.items(), reverse=True))
    assert asks == tuple(sorted(model_asks.items()))
    assert event.best_bid == bids[0] and event.best_ask == asks[0]


def test_docs_delta_levels_insert_update_delete() -> None:
    plane = Plane()
    start = {
        "topic": "orderbook.50.BTCUSDT",
        "type": "snapshot",
        "ts": 1687940967000,
        "data": {
            "s": "BTCUSDT",
            "b": [["30247.20", "1"], ["30240.00", "2"], ["30200.00", "3"]],
            "a": [["30248.70", "1"], ["30249.60", "2"], ["30300.00", "3"]],
            "u": 177400506,
            "seq": 66544703000,
        },
        "cts": 1687940966999,
    }
    _feed(plane, Link.LINEAR, start)
    [event] = _feed(plane, Link.LINEAR, sample("public-orderbook-linear-delta-docs.json"))
    bids, asks = plane.dp.orderbook("linear", "BTCUSDT") or ((), ())
    assert [p for p, _ in bids] == [
        D(x) for x in ("30247.20", "30245.40", "30242.10", "30240.30", "30200.00")
    ]
    assert dict(bids)[D("30247.20")] == D("30.028")  # updated
    assert [p for p, _ in asks] == [
        D(x) for x in ("30249.30", "30249.50", "30251.90", "30252.20", "30252.50", "30300")
    ]
    assert event.best_ask == (D("30249.30"), D("0.892")) and event.cts == 1687940967464


def test_a_snapshot_level_of_size_zero_is_no_level() -> None:
    plane = Plane()
    data = {
        "s": "X",
        "b": [["2", "1"], ["1", "0"]],
        "a": [["3", "0"], ["3", "2"], ["4", "1"], ["4", "0"]],
        "u": 9,
    }
    _feed(plane, Link.LINEAR, {"topic": "orderbook.50.X", "type": "snapshot", "ts": 1, "data": data})
    assert plane.dp.orderbook("linear", "X") == (((D(2), D(1)),), ((D(3), D(2)),))


def test_u_equal_one_resets_and_late_deltas_are_ignored() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, sample("public-orderbook-linear-l50-snapshot-real.json"))
    late = sample("public-orderbook-linear-l50-delta-real.json")
    late["data"]["u"] = 10132540  # not above the snapshot's u
    assert _feed(plane, Link.LINEAR, late) == []
    data = {"s": "BTCUSDT", "b": [["1", "2"]], "a": [["3", "4"]], "u": 1, "seq": 1}
    restart = {"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "data": data}
    [event] = _feed(plane, Link.LINEAR, restart)
    assert event.snapshot
    assert plane.dp.orderbook("linear", "BTCUSDT", 50) == (((D(1), D(2)),), ((D(3), D(4)),))


def test_book_delta_before_snapshot_and_after_link_down() -> None:
    plane = Plane()
    [problem] = _feed(plane, Link.LINEAR, sample("public-orderbook-linear-delta-real-small.json"))
    assert isinstance(problem, ProtocolProblem) and plane.dp.orderbook("linear", "AAPLUSDT") is None
    _feed(plane, Link.LINEAR, sample("public-orderbook-linear-l50-snapshot-real.json"))
    plane.dp.on_link_down(Link.LINEAR, 2.0)
    assert plane.dp.orderbook("linear", "BTCUSDT") is None
    [problem] = _feed(plane, Link.LINEAR, sample("public-orderbook-linear-l50-delta-real.json"))
    assert isinstance(problem, ProtocolProblem)


def test_depth_selects_the_book_and_none_picks_the_deepest() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, sample("public-orderbook-linear-l1-snapshot-real.json"))
    _feed(plane, Link.LINEAR, sample("public-orderbook-linear-l50-snapshot-real.json"))
    l1 = plane.dp.orderbook("linear", "BTCUSDT", 1)
    assert l1 == (((D("63561.5"), D("1.776")),), ((D("63561.6"), D("4.848")),))
    deepest = plane.dp.orderbook("linear", "BTCUSDT")
    assert deepest is not None and len(deepest[0]) == 50
    assert plane.dp.orderbook("spot", "BTCUSDT") is None
    assert book_depth("orderbook.rpi.BTCUSDT") == 0 and book_depth("orderbook.1000.X") == 1000


def test_spot_l1_delta_with_an_empty_side() -> None:
    plane = Plane()
    snap = sample("public-orderbook-spot-l1-delta-real-2023.json")
    snap.update(type="snapshot")
    snap["data"].update(b=[["32499.00", "1"]], a=[["32529.54", "2"]], u=873488)
    _feed(plane, Link.SPOT, snap)
    [event] = _feed(plane, Link.SPOT, sample("public-orderbook-spot-l1-delta-real-2023.json"))
    assert event.bids == () and event.best_bid == (D("32499.00"), D(1))
    assert event.best_ask == (D("32499.27"), D("0.011534")) and event.cts is None


_PRICES = st.integers(1, 30).map(lambda n: D(n) / 2)
_LEVELS = st.lists(st.tuples(_PRICES, st.sampled_from([D(0), D(1), D("2.5")])), max_size=8)


@given(st.lists(st.tuples(_LEVELS, _LEVELS), min_size=1, max_size=12))
def test_books_match_a_dict_model(deltas: list[tuple[list[tuple[D, D]], list[tuple[D, D]]]]) -> None:
    plane = Plane()
    snapshot = {
        "topic": "orderbook.200.X",
        "type": "snapshot",
        "ts": 1,
        "data": {"s": "X", "b": [], "a": [], "u": 5},
    }
    _feed(plane, Link.INVERSE, snapshot)
    model: tuple[dict[D, D], dict[D, D]] = ({}, {})
    for u, (b, a) in enumerate(deltas, start=6):
        msg = {"topic": "orderbook.200.X", "type": "delta", "ts": u, "data": {"s": "X", "u": u,
               "b": [[str(p), str(s)] for p, s in b], "a": [[str(p), str(s)] for p, s in a]}}  # fmt: skip
        [event] = _feed(plane, Link.INVERSE, msg)
        for side, levels in zip(model, (b, a), strict=True):
            for p, s in levels:
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s
        bids, asks = plane.dp.orderbook("inverse", "X", 200) or ((), ())
        assert bids == tuple(sorted(model[0].items(), reverse=True))
        assert asks == tuple(sorted(model[1].items()))
        assert event.best_bid == (bids[0] if bids else None) and event.best_ask == (asks[0] if asks else None)


# ------------------------------------------------------------------------------------------ pass-through


def test_pass_through_topics() -> None:
    plane = Plane()
    [trades] = _feed(plane, Link.LINEAR, sample("public-trade-linear-real.json"))
    assert isinstance(trades, PublicTrades) and trades.category == "linear" and len(trades.trades) > 1
    assert trades.trades[0].price == D("69916.80")
    [option_trades] = _feed(plane, Link.OPTION, sample("public-trade-option-real-2026.json"))
    assert isinstance(option_trades, PublicTrades) and option_trades.category == "option"
    [kline] = _feed(plane, Link.LINEAR, sample("public-kline-linear-docs.json"))
    assert (
        isinstance(kline, KlineUpdate)
        and kline.candles[0].close == D(16677)
        and kline.topic == "kline.5.BTCUSDT"
    )
    [liq] = _feed(plane, Link.LINEAR, sample("public-allLiquidation-linear-docs.json"))
    assert isinstance(liq, Liquidations) and liq.liquidations[0].price == D("0.04499")
    [old] = _feed(plane, Link.INVERSE, sample("public-liquidation-deprecated-docs.json"))
    assert (
        isinstance(old, Liquidations) and old.category == "inverse" and old.liquidations[0].size == D("0.003")
    )
    insurance = {
        "topic": "insurance.USDT",
        "type": "delta",
        "ts": 5,
        "data": [{"coin": "USDT", "balance": "1"}],
    }
    [other] = _feed(plane, Link.LINEAR, insurance)
    assert (
        isinstance(other, TopicData)
        and other.topic == "insurance.USDT"
        and other.message.topic == other.topic
    )
