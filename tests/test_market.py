"""Market state: merged tickers (snapshot + delta, ordering, staleness), order books, pass-through topics."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET, structs

from bybit_hybrid_core._codec import TickerData
from bybit_hybrid_core._config import Link
from bybit_hybrid_core._events import (
    KlineUpdate,
    Liquidations,
    OrderbookUpdate,
    PositionUpdate,
    ProtocolProblem,
    PublicTrades,
    TickerUpdate,
    TopicData,
)
from bybit_hybrid_core._plane.books import book_depth
from bybit_hybrid_core._plane.market import _merge
from bybit_hybrid_core._plane.pnl import unrealised_pnl
from test_hybrid_support import (
    Plane,
    decoded,
    position_message,
    position_row,
    sample,
    ticker_delta,
    ticker_snapshot,
)

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


_TICKER_FIELDS = [name for name in TickerData.__struct_fields__ if name != "symbol"]


@given(st.sets(st.sampled_from(_TICKER_FIELDS)), st.sets(st.sampled_from(_TICKER_FIELDS)))
def test_the_generated_merge_takes_exactly_the_fields_a_delta_sets(held: set[str], sent: set[str]) -> None:
    """`_merge` is generated from the Struct's fields: every field a delta sets (None too: "" is a value)
    overwrites, every UNSET one keeps what was held. Values are tags: the merge never looks at them."""
    tags: dict[str, Any] = {name: f"held-{name}" for name in held}
    before = TickerData(symbol="X", **tags)
    tags = {name: None if len(name) % 2 else f"new-{name}" for name in sent}
    delta = TickerData(symbol="X", **tags)
    merged = _merge(before, delta)
    for name in _TICKER_FIELDS:
        expected = getattr(delta if name in sent else before, name)
        assert getattr(merged, name) == expected, name
    assert merged == structs.replace(before, **{name: getattr(delta, name) for name in sent})


def test_a_mark_that_did_not_move_costs_the_join_no_pnl(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ticker message for a symbol with an open position reprices it only when the mark moved: no
    PositionUpdate and no Decimal PnL for a delta without markPrice or with the same mark."""
    calls: list[Decimal] = []

    def counting(category: str, side: str, size: D, avg: D, mark: D) -> D | None:
        calls.append(mark)
        return unrealised_pnl(category, side, size, avg, mark)

    monkeypatch.setattr("bybit_hybrid_core._plane.join.unrealised_pnl", counting)
    plane = Plane()
    row = position_row("BTCUSDT", "Buy", "2", "100", 10, mark="99")
    plane.dp.on_message(Link.PRIVATE, position_message(row), 1.0)
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "103", ts=10, cs=1), 1.1)
    assert calls == [D(99), D(103)]
    for cs, fields in enumerate(({"indexPrice": "1"}, {"markPrice": "103.0"}, {"lastPrice": "2"}), start=2):
        events = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=10 + cs, cs=cs, **fields), 1.2)
        assert [type(e) for e in events] == [TickerUpdate]
    assert calls == [D(99), D(103)]
    [_, update] = _feed(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=20, cs=9, markPrice="104"), 1.3)
    assert isinstance(update, PositionUpdate) and update.unrealised_pnl == D(8)
    assert calls == [D(99), D(103), D(104)]


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


def test_a_snapshot_applies_in_order_when_a_price_repeats_in_another_spelling() -> None:
    """A snapshot of distinct non-zero levels is taken as sorted; one with a repeat is applied in order."""
    plane = Plane()
    bids = [["2.50", "1"], ["2", "3"], ["2.5", "4"]]  # 2.50 then 2.5: one level, the later size
    data = {"s": "X", "u": 3, "b": bids, "a": [["3", "1"], ["3.0", "0"], ["5", "2"]]}
    msg = {"topic": "orderbook.50.X", "type": "snapshot", "ts": 1, "data": data}
    [event] = _feed(plane, Link.LINEAR, msg)
    assert plane.dp.orderbook("linear", "X") == (((D("2.5"), D(4)), (D(2), D(3))), ((D(5), D(2)),))
    assert event.best_bid == (D("2.5"), D(4)) and event.best_ask == (D(5), D(2))


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


_BID_PRICES = st.integers(1, 30).map(lambda n: D(n) / 2)  # bids up to 15, asks from 15.5: never crossed
_ASK_PRICES = st.integers(31, 60).map(lambda n: D(n) / 2)
_SIZES = st.sampled_from([D(0), D(1), D("2.5")])


@st.composite
def _book_deltas(draw: st.DrawFn) -> list[tuple[list[tuple[D, D]], list[tuple[D, D]]]]:
    """Deltas that fit the book they are applied to: a size 0 only for a price held at that point."""
    held: tuple[set[D], set[D]] = (set(), set())
    deltas = []
    for _ in range(draw(st.integers(1, 12))):
        delta: tuple[list[tuple[D, D]], list[tuple[D, D]]] = ([], [])
        for side, prices, levels in zip(held, (_BID_PRICES, _ASK_PRICES), delta, strict=True):
            for price, size in draw(st.lists(st.tuples(prices, _SIZES), max_size=8)):
                if size == 0 and price not in side:
                    continue
                (side.discard if size == 0 else side.add)(price)
                levels.append((price, size))
        deltas.append(delta)
    return deltas


@given(_book_deltas())
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
    assert plane.resubscribes == []


# ----------------------------------------------------------------------------------- never frozen: tickers

RESET = 5  # Timings().out_of_order_reset
QUIET = 5.0  # Timings().topic_quiet_after


def _btc_delta(cs: int, now_ts: int, mark: str = "101") -> Any:
    return ticker_delta("BTCUSDT", ts=now_ts, cs=cs, markPrice=mark)


def test_one_delta_far_ahead_makes_a_run_of_older_ones_a_reset() -> None:
    """The user's bug: one delta whose cs is far ahead, then every genuine delta looks older."""
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=5))
    [poison] = _feed(plane, Link.LINEAR, _btc_delta(9_000_000_000, 11))
    assert isinstance(poison, TickerUpdate)  # nothing tells it apart yet
    for n in range(RESET - 1):  # a few older ones: late or duplicates, ignored quietly
        assert _feed(plane, Link.LINEAR, _btc_delta(6 + n, 12 + n, mark=str(102 + n))) == []
    assert plane.resubscribes == []
    assert _feed(plane, Link.LINEAR, _btc_delta(10, 16, mark="106")) == []
    [(link, topic, reason)] = plane.resubscribes
    assert (link, topic) == (Link.LINEAR, "tickers.BTCUSDT")
    assert f"{RESET} messages in a row older" in reason and "cs=9000000000" in reason and "cs=10," in reason
    # one request per reset: the old ones still in flight ask for nothing more, and are not reported
    for n in range(2 * RESET):
        assert _feed(plane, Link.LINEAR, _btc_delta(11 + n, 17 + n), now=1.0 + n / 10) == []
    assert len(plane.resubscribes) == 1
    # the resubscribe's snapshot is taken whatever its cs, and the genuine deltas after it again
    [snap] = _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "120", ts=40, cs=30), now=2.5)
    assert snap.snapshot and snap.ticker.mark_price == D(120)
    [delta] = _feed(plane, Link.LINEAR, _btc_delta(31, 41, mark="121"), now=2.6)
    assert delta.ticker.mark_price == D(121) and plane.dp.ticker("BTCUSDT").mark_price == D(121)  # type: ignore[union-attr]


def test_older_messages_between_accepted_ones_never_reset() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=100))
    cs = 100
    for _ in range(3):
        for n in range(RESET - 1):
            assert _feed(plane, Link.LINEAR, _btc_delta(50 + n, 11)) == []
        cs += 1
        [update] = _feed(plane, Link.LINEAR, _btc_delta(cs, 20 + cs))
        assert isinstance(update, TickerUpdate)
    assert plane.resubscribes == []


def test_no_snapshot_after_a_reset_asks_again_while_deltas_keep_coming() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=10**9))
    for n in range(RESET):
        _feed(plane, Link.LINEAR, _btc_delta(1 + n, 11 + n), now=1.0)
    assert len(plane.resubscribes) == 1
    # the snapshot never comes: deltas keep arriving, none is taken; asked again every topic_quiet_after
    for step in range(1, 40):
        assert _feed(plane, Link.LINEAR, _btc_delta(10 + step, 20 + step), now=1.0 + step * 0.5) == []
    asks = plane.resubscribes[1:]
    assert len(asks) == 3 and all("no snapshot" in reason for _, _, reason in asks)  # at 6.0, 11.0, 16.0
    [update] = _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "130", ts=80, cs=60), now=21.0)
    assert update.snapshot


def test_deltas_awaiting_a_snapshot_are_reported_once_per_wait() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=50))
    plane.dp.on_link_down(Link.LINEAR, 2.0)
    plane.dp.on_link_up(Link.LINEAR, 3.0, 0)
    problems = []
    for step in range(12):  # deltas but no snapshot on the new connection: no flood of problems
        problems += _feed(plane, Link.LINEAR, _btc_delta(51 + step, 11 + step), now=3.0 + step)
    [problem] = problems
    assert isinstance(problem, ProtocolProblem) and "before the new snapshot" in problem.detail
    # the wait is counted from the first ignored delta (3.0): asked at 8.0 and 13.0
    assert [round(float(r.split()[2]), 1) for _, _, r in plane.resubscribes] == [QUIET, QUIET]
    assert len(plane.resubscribes) == 2
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "110", ts=40, cs=2), now=15.0)
    plane.dp.on_link_down(Link.LINEAR, 16.0)  # a new wait is reported again
    [again] = _feed(plane, Link.LINEAR, _btc_delta(3, 41), now=17.0)
    assert isinstance(again, ProtocolProblem)


def test_deltas_for_a_symbol_that_never_had_a_snapshot_ask_for_one() -> None:
    plane = Plane()
    events = []
    for step in range(8):
        events += _feed(plane, Link.LINEAR, _btc_delta(1 + step, 10 + step), now=1.0 + step)
    assert len(events) == 1 and "before any snapshot" in events[0].detail
    assert [(link, topic) for link, topic, _ in plane.resubscribes] == [(Link.LINEAR, "tickers.BTCUSDT")]
    assert plane.dp.ticker("BTCUSDT") is None


def test_a_new_subscriptions_snapshot_is_taken_whatever_its_cs() -> None:
    """A ticker released and subscribed again keeps its state meanwhile; that state may hold a poisoned cs."""
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=10**9))
    assert _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "101", ts=11, cs=7)) == []  # older: ignored
    plane.dp.on_subscribed(Link.LINEAR, ("tickers.BTCUSDT",), 2.0)
    [update] = _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "102", ts=12, cs=8), now=2.0)
    assert update.snapshot and update.ticker.mark_price == D(102)
    assert _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "103", ts=11, cs=7)) == []  # once only
    # the ack and the first push may come in either order: deltas are never held back by the ack
    plane.dp.on_subscribed(Link.LINEAR, ("tickers.BTCUSDT",), 3.0)
    [update] = _feed(plane, Link.LINEAR, _btc_delta(9, 13, mark="104"), now=3.0)
    assert update.ticker.mark_price == D(104) and plane.resubscribes == []


def test_option_tickers_older_by_ts_also_reset() -> None:
    """Options have no cs and are snapshot-only: a run of snapshots older by ts is a reset too."""
    plane = Plane()
    msg = sample("public-tickers-option-snapshot-real-2026.json")
    symbol = msg["data"]["symbol"]
    _feed(plane, Link.OPTION, {**msg, "ts": 10**15})
    for n in range(RESET):
        assert _feed(plane, Link.OPTION, {**msg, "ts": msg["ts"] + n}) == []
    [(link, topic, reason)] = plane.resubscribes
    assert (link, topic) == (Link.OPTION, f"tickers.{symbol}") and "ts=1000000000000000" in reason
    [update] = _feed(plane, Link.OPTION, {**msg, "ts": msg["ts"] + 10})
    assert update.snapshot and update.ts == msg["ts"] + 10


def test_a_shard_going_down_only_touches_the_tickers_it_fed() -> None:
    plane = Plane()
    _feed(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "100", ts=10, cs=50))
    _feed(plane, Link.LINEAR_2, ticker_snapshot("ETHUSDT", "10", ts=10, cs=50))
    plane.dp.on_link_down(Link.LINEAR_2, 2.0)
    [update] = _feed(plane, Link.LINEAR, _btc_delta(51, 11))
    assert isinstance(update, TickerUpdate) and update.category == "linear"
    [problem] = _feed(plane, Link.LINEAR_2, ticker_delta("ETHUSDT", ts=11, cs=51, markPrice="11"))
    assert isinstance(problem, ProtocolProblem)


# ------------------------------------------------------------------------------------- never frozen: books

_TOPIC = "orderbook.50.X"


def _book(plane: Plane, kind: str, u: int, bids: Any, asks: Any, now: float = 1.0, link: Link = Link.LINEAR,
          topic: str = _TOPIC) -> list[Any]:  # fmt: skip
    data = {"s": "X", "u": u, "seq": u, "b": bids, "a": asks}
    return _feed(plane, link, {"topic": topic, "type": kind, "ts": u, "data": data}, now)


def _snapshot_x(plane: Plane, u: int = 10, link: Link = Link.LINEAR) -> None:
    [event] = _book(plane, "snapshot", u, [["99", "1"], ["98", "2"]], [["101", "1"], ["102", "2"]], link=link)
    assert isinstance(event, OrderbookUpdate)


def _rebuilt(plane: Plane, events: list[Any], why: str) -> None:
    [problem] = events
    assert isinstance(problem, ProtocolProblem) and why in problem.detail and "dropped" in problem.detail
    assert plane.dp.orderbook("linear", "X", 50) is None
    [(link, topic, reason)] = plane.resubscribes
    assert (link, topic) == (Link.LINEAR, _TOPIC) and why in reason
    # the deltas until the snapshot are ignored quietly; the next snapshot is taken whatever its u
    assert _book(plane, "delta", 12, [["97", "1"]], []) == []
    [event] = _book(plane, "snapshot", 3, [["90", "1"]], [["91", "1"]])
    assert event.snapshot and plane.dp.orderbook("linear", "X", 50) == (((D(90), D(1)),), ((D(91), D(1)),))
    [event] = _book(plane, "delta", 4, [["89", "5"]], [])
    assert isinstance(event, OrderbookUpdate) and len(plane.resubscribes) == 1


def test_a_delete_of_a_price_the_book_does_not_hold_rebuilds_it() -> None:
    plane = Plane()
    _snapshot_x(plane)
    _rebuilt(plane, _book(plane, "delta", 11, [], [["103", "0"]]), "deletes the ask 103")


def test_a_delta_that_crosses_the_book_rebuilds_it() -> None:
    plane = Plane()
    _snapshot_x(plane)
    _rebuilt(plane, _book(plane, "delta", 11, [["101", "3"]], []), "crossed (best bid 101 >= best ask 101)")


def test_a_run_of_deltas_not_above_the_held_u_rebuilds_the_book() -> None:
    plane = Plane()
    _snapshot_x(plane, u=10**9)
    for n in range(RESET - 1):
        assert _book(plane, "delta", 11 + n, [["97", "1"]], []) == []
    _rebuilt(plane, _book(plane, "delta", 20, [["97", "1"]], []), f"{RESET} deltas in a row with u not above")


def test_gaps_in_u_are_not_a_reason_to_rebuild() -> None:
    """Bybit documents `u` as "a sequence", never as +1 per delta (see `_market_book`): a gap is applied."""
    plane = Plane()
    _snapshot_x(plane)
    [event] = _book(plane, "delta", 25, [["97", "1"]], [])
    assert isinstance(event, OrderbookUpdate) and event.u == 25 and plane.resubscribes == []


def test_a_crossed_snapshot_is_taken_as_bybit_states_it() -> None:
    plane = Plane()
    [event] = _book(plane, "snapshot", 10, [["101", "1"]], [["100", "1"]])
    assert isinstance(event, OrderbookUpdate) and plane.resubscribes == []


def test_a_delta_only_book_topic_is_never_resubscribed() -> None:
    """`orderbook.full.{symbol}` brings no snapshot on subscribe (REST has it): asking is useless."""
    plane = Plane()
    events = []
    for step in range(12):
        events += _book(plane, "delta", 5 + step, [["1", "1"]], [], now=1.0 + step, topic="orderbook.full.X")
    assert len(events) == 1 and isinstance(events[0], ProtocolProblem) and plane.resubscribes == []


def test_a_book_awaiting_its_snapshot_asks_again_if_deltas_keep_coming() -> None:
    plane = Plane()
    _snapshot_x(plane)
    _book(plane, "delta", 11, [["101", "3"]], [])  # crossed: dropped, resubscribed at 1.0
    for step in range(1, 25):
        _book(plane, "delta", 11 + step, [["97", "1"]], [], now=1.0 + step * 0.5)
    assert len(plane.resubscribes) == 3  # 1.0, then 6.0 and 11.0: deltas but no snapshot


def test_a_shard_going_down_only_drops_the_books_it_fed() -> None:
    plane = Plane()
    _snapshot_x(plane, link=Link.LINEAR)
    data = {"s": "Y", "u": 3, "seq": 3, "b": [["1", "1"]], "a": [["2", "1"]]}
    _feed(plane, Link.LINEAR_2, {"topic": "orderbook.50.Y", "type": "snapshot", "ts": 1, "data": data})
    plane.dp.on_link_down(Link.LINEAR_2, 2.0)
    assert plane.dp.orderbook("linear", "Y") is None and plane.dp.orderbook("linear", "X") is not None


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
