"""The hybrid join through the DataPlane: live-priced positions, snapshots, tickers that follow positions.

Scenario tests first (hand-checked numbers), then a hypothesis state machine over interleavings of position
pushes, ticker messages, REST snapshot answers, reconnects and clock ticks, checking every "must hold" of
issue 3 (see `JoinMachine`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._errors import LocalProtocolError
from bybit_hybrid_core._events import (
    PositionClosed,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    SnapshotFailed,
    TickerUpdate,
    TopicReset,
)
from test_hybrid_support import (
    WALL0,
    Plane,
    decoded,
    make_config,
    position_message,
    position_row,
    rest_body,
    rest_row,
    sample,
    ticker_delta,
    ticker_snapshot,
)

D = Decimal
BTC = ("linear", "BTCUSDT", 0)


def _push(plane: Plane, now: float, *rows: dict[str, Any], creation: int = WALL0) -> list[Any]:
    plane.dp.on_message(Link.PRIVATE, position_message(*rows, creation=creation), now)
    return plane.take()


def _tick(plane: Plane, link: Link, msg: Any, now: float) -> list[Any]:
    plane.dp.on_message(link, msg, now)
    return [e for e in plane.take() if not isinstance(e, TickerUpdate)]


def _open_btc(plane: Plane, now: float = 1.0, creation: int = WALL0) -> list[Any]:
    return _push(plane, now, position_row("BTCUSDT", "Buy", "2", "100", 10, mark="99"), creation=creation)


# ----------------------------------------------------------------------------------------- lifecycle


def test_open_prices_at_the_positions_own_mark_then_at_the_ticker() -> None:
    plane = Plane()
    opened, update = _open_btc(plane, creation=WALL0 + 5)
    assert isinstance(opened, PositionOpened) and opened.cause == "position" and opened.position.key == BTC
    assert isinstance(update, PositionUpdate) and update.cause == "position" and update.link is Link.PRIVATE
    assert (update.mark_price, update.mark_ts, update.mark_age) == (D(99), WALL0 + 5, 0.0)
    assert (update.unrealised_pnl, update.pnl_pct, update.stale) == (D(-2), D(-1), False)
    assert plane.dp.wanted_topics()[Link.LINEAR] == {"tickers.BTCUSDT"} and plane.dp.wanted_version == 1
    [update] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "103", ts=WALL0 + 10, cs=1), 1.5)
    assert update.cause == "mark" and update.link is Link.LINEAR
    assert (update.mark_price, update.mark_ts, update.unrealised_pnl, update.pnl_pct) == (
        D(103),
        WALL0 + 10,
        D(6),
        D(3),
    )
    # a delta without markPrice, or with the same mark, changes nothing a position shows
    assert _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 11, cs=2, indexPrice="1"), 1.6) == []
    assert (
        _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 12, cs=3, markPrice="103.0"), 1.7) == []
    )
    [update] = _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 13, cs=4, markPrice="98.5"), 2.0)
    assert (update.mark_price, update.unrealised_pnl, update.mark_age) == (D("98.5"), D(-3), 0.0)


def test_no_mark_known_yet() -> None:
    plane = Plane()
    _, update = _push(plane, 1.0, position_row("BTCUSDT", "Buy", "2", "100", 10) | {"markPrice": ""})
    assert (update.mark_price, update.mark_ts, update.mark_age, update.unrealised_pnl) == (
        None,
        None,
        None,
        None,
    )
    assert update.pnl_pct is None and not update.stale
    [update] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "101", ts=WALL0, cs=1), 1.1)
    assert update.unrealised_pnl == D(2)


def test_mark_age_counts_from_when_the_mark_arrived() -> None:
    plane = Plane(make_config(mark_min_interval=0.0))
    _open_btc(plane, 1.0)
    _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "103", ts=WALL0, cs=1), 1.0)
    [update] = _push(plane, 3.5, position_row("BTCUSDT", "Buy", "3", "100", 11))
    assert update.cause == "position" and update.mark_price == D(103) and update.mark_age == 2.5
    assert update.unrealised_pnl == D(9)


def test_position_pushes_without_change_emit_nothing() -> None:
    plane = Plane()
    _open_btc(plane)
    _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "103", ts=WALL0, cs=1), 1.1)
    # order created: Bybit pushes the position again, same fields (its own stale mark differs: ignored now)
    assert _push(plane, 1.2, position_row("BTCUSDT", "Buy", "2", "100", 10, mark="50")) == []
    # only the seq moved (e.g. another symbol's fill numbering): held, but nothing to show
    assert _push(plane, 1.3, position_row("BTCUSDT", "Buy", "2", "100", 12)) == []
    assert plane.dp.positions()[BTC].seq == 12
    [update] = _push(plane, 1.4, position_row("BTCUSDT", "Buy", "2", "100", 12, takeProfit="120"))
    assert update.take_profit == D(120) and update.seq == 12 and update.cause == "position"


def test_close_reports_the_last_open_state_and_silences_the_position() -> None:
    plane = Plane()
    _open_btc(plane)
    [closed] = _push(plane, 2.0, position_row("BTCUSDT", "", "0", "0", 11))
    assert isinstance(closed, PositionClosed) and closed.seq == 11 and closed.cause == "position"
    assert closed.position.size == D(2) and plane.dp.positions() == {}
    assert _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "103", ts=WALL0, cs=1), 2.1) == []
    plane.dp.tick(100.0, WALL0)
    assert plane.of(PositionUpdate) == []
    # a late push of the old open state cannot resurrect it
    assert _open_btc(plane, 101.0) == []


def test_ticker_released_after_grace_unless_reopened() -> None:
    plane = Plane(make_config(ticker_release_grace=30.0))
    _open_btc(plane, 1.0)
    _push(plane, 2.0, position_row("BTCUSDT", "", "0", "0", 11))
    assert plane.dp.wanted_topics()[Link.LINEAR] == {"tickers.BTCUSDT"} and plane.dp.deadline() == 32.0
    plane.dp.tick(31.9, WALL0)
    assert plane.dp.wanted_version == 1
    _push(plane, 20.0, position_row("BTCUSDT", "Sell", "1", "100", 12))  # reopened within the grace
    plane.dp.tick(40.0, WALL0)
    assert plane.dp.wanted_topics()[Link.LINEAR] == {"tickers.BTCUSDT"} and plane.dp.wanted_version == 1
    _push(plane, 41.0, position_row("BTCUSDT", "", "0", "0", 13))
    plane.dp.tick(71.0, WALL0)
    assert plane.dp.wanted_topics()[Link.LINEAR] == frozenset() and plane.dp.wanted_version == 2


def test_hedge_legs_share_the_ticker() -> None:
    plane = Plane(make_config(ticker_release_grace=0.0))
    _push(
        plane,
        1.0,
        position_row("ETHUSDT", "Buy", "1", "10", 5, idx=1),
        position_row("ETHUSDT", "Sell", "3", "12", 5, idx=2),
    )
    updates = _tick(plane, Link.LINEAR, ticker_snapshot("ETHUSDT", "11", ts=WALL0, cs=1), 1.1)
    assert [(u.position_idx, u.unrealised_pnl) for u in updates] == [(1, D(1)), (2, D(3))]
    _push(plane, 2.0, position_row("ETHUSDT", "", "0", "0", 6, idx=1))
    assert plane.dp.wanted_topics()[Link.LINEAR] == {"tickers.ETHUSDT"}
    _push(plane, 3.0, position_row("ETHUSDT", "", "0", "0", 7, idx=2))
    assert plane.dp.wanted_topics()[Link.LINEAR] == frozenset()  # no grace configured


def test_inverse_and_option_positions_use_their_own_links() -> None:
    plane = Plane()
    _push(plane, 1.0, position_row("BTCUSD", "Buy", "1000", "20000", 3, category="inverse"))
    option_symbol = "BTC-25JUN27-106000-P-USDT"
    _push(plane, 1.0, position_row(option_symbol, "Sell", "1", "24000", 4, category="option"))
    wanted = plane.dp.wanted_topics()
    assert wanted[Link.INVERSE] == {"tickers.BTCUSD"} and wanted[Link.OPTION] == {f"tickers.{option_symbol}"}
    [update] = _tick(plane, Link.INVERSE, ticker_snapshot("BTCUSD", "25000", ts=WALL0, cs=1), 1.1)
    assert (update.unrealised_pnl, update.pnl_pct) == (D("0.01"), D(20))
    [update] = _tick(
        plane, Link.OPTION, decoded(sample("public-tickers-option-snapshot-real-2026.json")), 1.2
    )
    assert update.mark_price == D(24465) and update.unrealised_pnl == D(-465)


# ---------------------------------------------------------------------------------------- track / pins


def test_track_pins_a_ticker_with_reference_counts() -> None:
    plane = Plane(make_config(ticker_release_grace=5.0))
    plane.dp.track("spot", "BTCUSDT")
    plane.dp.track("spot", "BTCUSDT")
    assert plane.dp.wanted_topics()[Link.SPOT] == {"tickers.BTCUSDT"} and plane.dp.wanted_version == 1
    plane.dp.untrack("spot", "BTCUSDT")
    plane.dp.tick(10.0, WALL0)
    assert plane.dp.wanted_topics()[Link.SPOT] == {"tickers.BTCUSDT"}
    plane.dp.untrack("spot", "BTCUSDT")
    plane.dp.tick(14.9, WALL0)
    assert plane.dp.wanted_topics()[Link.SPOT] == {"tickers.BTCUSDT"}
    plane.dp.tick(15.0, WALL0)
    assert plane.dp.wanted_topics()[Link.SPOT] == frozenset() and plane.dp.wanted_version == 2
    with pytest.raises(LocalProtocolError, match="without a matching track"):
        plane.dp.untrack("spot", "BTCUSDT")


def test_a_pin_outlives_the_position() -> None:
    plane = Plane(make_config(ticker_release_grace=0.0))
    plane.dp.track("linear", "BTCUSDT")
    _open_btc(plane)
    _push(plane, 2.0, position_row("BTCUSDT", "", "0", "0", 11))
    assert plane.dp.wanted_topics()[Link.LINEAR] == {"tickers.BTCUSDT"}


@pytest.mark.parametrize(
    ("category", "symbol"), [("futures", "BTCUSDT"), ("linear", ""), ("linear", "tickers.X")]
)
def test_track_refuses_bad_names(category: str, symbol: str) -> None:
    with pytest.raises(LocalProtocolError):
        Plane().dp.track(category, symbol)


# ------------------------------------------------------------------------------------------- staleness


def test_stale_when_no_ticker_arrives_in_time() -> None:
    plane = Plane(make_config(stale_mark_after=5.0))
    _open_btc(plane, 1.0)
    assert plane.dp.deadline() == 6.0
    plane.dp.tick(5.99, WALL0)
    assert plane.take() == []
    plane.dp.tick(6.0, WALL0)
    [update] = plane.take()
    assert update.stale and update.cause == "mark" and update.mark_price == D(99) and update.mark_age == 5.0
    [update] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "99", ts=WALL0, cs=1), 7.0)
    assert not update.stale and update.mark_price == D(99)
    # quiet market: deltas without a mark keep it fresh
    for i in range(1, 20):
        _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + i, cs=1 + i, indexPrice=str(i)), 7.0 + i)
        plane.dp.tick(7.0 + i, WALL0)
    assert plane.of(PositionUpdate) == []
    plane.dp.tick(31.0, WALL0)
    [update] = plane.take()
    assert update.stale and update.mark_age == 24.0


def test_link_down_makes_the_mark_stale_at_once_until_the_new_snapshot() -> None:
    plane = Plane()
    _open_btc(plane, 1.0)
    _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "101", ts=WALL0, cs=10), 1.0)
    plane.dp.on_link_down(Link.LINEAR, 2.0)
    [update] = plane.take()
    assert update.stale and update.mark_price == D(101) and update.link is Link.LINEAR
    plane.dp.on_link_up(Link.LINEAR, 3.0, WALL0)
    assert plane.take() == []
    [update] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "102", ts=WALL0 + 9, cs=2), 3.1)
    assert not update.stale and update.mark_price == D(102)


def test_conflation_delivers_the_latest_mark_once_per_interval() -> None:
    plane = Plane(make_config(mark_min_interval=1.0))
    _open_btc(plane, 1.0)
    [first] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "101", ts=WALL0, cs=1), 2.0)
    for i in range(1, 6):
        assert (
            _tick(
                plane,
                Link.LINEAR,
                ticker_delta("BTCUSDT", ts=WALL0 + i, cs=1 + i, markPrice=str(101 + i)),
                2 + i / 10,
            )
            == []
        )
    assert plane.dp.deadline() == 3.0
    plane.dp.tick(3.0, WALL0)
    [late] = plane.take()
    assert (first.mark_price, late.mark_price, late.cause, late.mark_ts) == (
        D(101),
        D(106),
        "mark",
        WALL0 + 5,
    )
    # a position change is never held back and carries the latest mark
    _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 9, cs=9, markPrice="110"), 3.2)
    [now] = _push(plane, 3.3, position_row("BTCUSDT", "Buy", "3", "100", 11))
    assert now.cause == "position" and now.mark_price == D(110) and now.size == D(3)
    plane.dp.tick(5.0, WALL0)
    assert plane.take() == []  # nothing newer than what the position update carried


# -------------------------------------------------------------------------------------------- snapshots


def _synced(
    plane: Plane, now: float, linear: list[dict[str, Any]], inverse: list[dict[str, Any]] | None = None
) -> None:
    fetches = {f.request.category: f.request for f in plane.up_private(now) or plane.fetches()}
    plane.dp.rest_answer(fetches["linear"], 200, rest_body("linear", linear), now, WALL0)
    plane.dp.rest_answer(fetches["inverse"], 200, rest_body("inverse", inverse or []), now, WALL0)


def test_snapshot_opens_what_the_stream_never_said() -> None:
    plane = Plane()
    _synced(plane, 1.0, [rest_row("BTCUSDT", "Sell", "1", "100", 7, mark="90")])
    opened, update, synced_l, synced_i = plane.take()
    assert isinstance(opened, PositionOpened) and opened.cause == "snapshot"
    assert update.cause == "snapshot" and update.unrealised_pnl == D(10) and update.mark_ts == WALL0
    assert (synced_l.category, synced_l.open_positions, synced_i.open_positions) == ("linear", 1, 0)


def test_snapshot_closes_held_positions_it_does_not_list_unless_the_stream_spoke_since() -> None:
    plane = Plane()
    _push(
        plane,
        0.5,
        position_row("BTCUSDT", "Buy", "1", "100", 5),
        position_row("ETHUSDT", "Buy", "1", "10", 5),
    )
    [linear, inverse] = plane.up_private(1.0)
    _push(plane, 1.5, position_row("ETHUSDT", "Buy", "2", "10", 6))  # after the request went out
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), 2.0, WALL0)
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", []), 2.0, WALL0)
    closed = plane.of(PositionClosed)
    assert [(e.position.symbol, e.cause, e.seq) for e in closed] == [("BTCUSDT", "snapshot", 5)]
    assert list(plane.dp.positions()) == [("linear", "ETHUSDT", 0)]
    assert [e.open_positions for e in plane.of(PositionsSynced)] == [0, 1]


def test_the_newer_seq_wins_the_reconciliation() -> None:
    plane = Plane()
    _push(
        plane,
        0.5,
        position_row("BTCUSDT", "Buy", "1", "100", 5),
        position_row("ETHUSDT", "Buy", "1", "10", 5),
    )
    _push(plane, 0.6, position_row("XRPUSDT", "Buy", "1", "2", 5))
    [linear, _] = plane.up_private(1.0)
    _push(
        plane, 1.5, position_row("ETHUSDT", "Buy", "1", "10", 5, takeProfit="20")
    )  # same seq, after request
    plane.take()
    rows = [
        rest_row("BTCUSDT", "Buy", "4", "100", 9),  # newer than the stream: wins
        rest_row("ETHUSDT", "Buy", "1", "10", 5),  # same seq, stream touched it since: stream wins (TP 20)
        rest_row("XRPUSDT", "Buy", "1", "2", 4),  # older: ignored
    ]
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", rows), 2.0, WALL0)
    held = plane.dp.positions()
    assert held[BTC].size == D(4) and held[BTC].seq == 9
    assert held[("linear", "ETHUSDT", 0)].take_profit == D(20)
    assert held[("linear", "XRPUSDT", 0)].seq == 5
    assert [(u.symbol, u.cause) for u in plane.of(PositionUpdate)] == [("BTCUSDT", "snapshot")]


def test_same_seq_untouched_since_the_request_takes_the_snapshot() -> None:
    plane = Plane()
    _push(plane, 0.5, position_row("BTCUSDT", "Buy", "1", "100", 5))
    plane.take()
    _synced(plane, 1.0, [rest_row("BTCUSDT", "Buy", "1", "100", 5) | {"stopLoss": "90"}])
    assert plane.dp.positions()[BTC].stop_loss == D(90)
    [update] = plane.of(PositionUpdate)
    assert update.cause == "snapshot" and update.stop_loss == D(90)


def test_a_repeated_unchanged_push_is_no_news_for_the_reconciliation() -> None:
    plane = Plane()
    _push(plane, 0.5, position_row("BTCUSDT", "Buy", "1", "100", 5))
    [linear, inverse] = plane.up_private(1.0)
    assert _push(plane, 1.5, position_row("BTCUSDT", "Buy", "1", "100", 5)) == []  # an order was placed
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), 2.0, WALL0)
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", []), 2.0, WALL0)
    [closed] = plane.of(PositionClosed)
    assert closed.cause == "snapshot" and plane.dp.positions() == {}
    plane.take()
    # the closing fill's seq is unknown but higher: the old state cannot come back with the old seq
    assert _push(plane, 3.0, position_row("BTCUSDT", "Buy", "1", "100", 5)) == []
    assert plane.dp.positions() == {}


def test_the_snapshot_waits_for_the_position_subscribe_ack() -> None:
    # A REST snapshot taken before `position` is subscribed could miss a fill made between the two.
    plane = Plane()
    plane.dp.on_link_up(Link.PRIVATE, 1.0, WALL0 + 1000)
    assert plane.fetches() == []
    plane.dp.on_subscribed(Link.PRIVATE, ("order", "wallet"), 1.1)
    assert plane.fetches() == []
    plane.dp.on_subscribed(Link.PRIVATE, ("position",), 1.2)
    fetches = plane.fetches()
    assert {f.request.category for f in fetches} == {"linear", "inverse"}
    assert all(("X-BAPI-TIMESTAMP", str(WALL0 + 1200)) in f.request.headers for f in fetches)
    plane.dp.on_subscribed(Link.PRIVATE, ("position",), 1.3)  # a repeated ack starts no second round
    assert plane.fetches() == []


# ------------------------------------------------------------------------------------------ never frozen

RESET = 5  # Timings().out_of_order_reset


def test_a_poisoned_cs_stales_the_mark_until_the_resubscribes_snapshot() -> None:
    """The user's report: one ticker delta far ahead in cs froze the marks until the link happened to drop."""
    plane = Plane()
    plane.up_private(0.0)
    _open_btc(plane, 1.0)
    [update] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "101", ts=WALL0, cs=10), 1.1)
    assert update.mark_price == D(101) and not update.stale
    [update] = _tick(
        plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 1, cs=10**12, markPrice="102"), 1.2
    )
    assert update.mark_price == D(102)
    for n in range(RESET - 1):  # genuine deltas look older: ignored, the mark holds (not stale yet)
        assert (
            _tick(
                plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 2 + n, cs=11 + n, markPrice="103"), 1.3
            )
            == []
        )
    [update] = _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 9, cs=20, markPrice="103"), 1.4)
    assert update.stale and update.mark_price == D(102) and update.cause == "mark"  # reset: stale at once
    [(link, topic, _)] = plane.resubscribes
    assert (link, topic) == (Link.LINEAR, "tickers.BTCUSDT")
    # the core resubscribes; Bybit's snapshot arrives with the genuine (much lower) cs: marks resume
    [update] = _tick(plane, Link.LINEAR, ticker_snapshot("BTCUSDT", "104", ts=WALL0 + 20, cs=25), 1.5)
    assert not update.stale and update.mark_price == D(104)
    [update] = _tick(plane, Link.LINEAR, ticker_delta("BTCUSDT", ts=WALL0 + 21, cs=26, markPrice="105"), 1.6)
    assert not update.stale and update.mark_price == D(105) and update.unrealised_pnl == D(10)


def test_a_poisoned_position_seq_is_reset_and_healed_by_the_rest_snapshot() -> None:
    plane = Plane()
    [linear, inverse] = plane.up_private(0.0)
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", []), 0.1, WALL0)
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), 0.1, WALL0)
    _open_btc(plane, 1.0)  # seq 10
    _push(plane, 1.1, position_row("BTCUSDT", "Buy", "2", "100", 10**12, mark="99"))  # same state, bogus seq
    for n in range(RESET - 1):  # genuine fills look older: ignored, the size stays frozen at 2
        assert _push(plane, 1.2 + n / 10, position_row("BTCUSDT", "Buy", str(3 + n), "100", 11 + n)) == []
    assert plane.fetches() == [] and plane.dp.positions()[BTC].size == D(2)
    events = _push(plane, 2.0, position_row("BTCUSDT", "Buy", "7", "100", 15))
    reset, update = events
    assert isinstance(reset, TopicReset) and (reset.topic, reset.remedy, reset.link) == (
        "position",
        "snapshot",
        Link.PRIVATE,
    )
    assert f"{RESET} pushes in a row" in reset.reason and "seq=1000000000000" in reset.reason
    # the stream's latest word is taken at once, and the seq goes down across the reset
    assert isinstance(update, PositionUpdate) and (update.size, update.seq) == (D(7), 15)
    # a REST snapshot round starts; its row wins over what the stream said before the request
    [linear, inverse] = plane.fetches()
    rows = [rest_row("BTCUSDT", "Buy", "8", "100", 16)]
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", rows), 2.5, WALL0)
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), 2.5, WALL0)
    assert plane.dp.positions()[BTC].size == D(8) and plane.dp.positions()[BTC].seq == 16
    [update] = plane.of(PositionUpdate)
    assert update.cause == "snapshot" and update.size == D(8)
    # and the stream is heard again
    [update] = _push(plane, 3.0, position_row("BTCUSDT", "Buy", "9", "100", 17))[-1:]
    assert update.size == D(9)


def test_rest_rows_older_than_the_held_seq_never_count_towards_a_reset() -> None:
    """A REST answer may lag the stream: its rows with a lower seq are ignored, never taken as a poisoning."""
    plane = Plane()
    _push(plane, 0.5, position_row("BTCUSDT", "Buy", "1", "100", 50))
    for n in range(RESET + 1):
        [linear, _] = plane.up_private(1.0 + n)
        plane.dp.rest_answer(
            linear.request,
            200,
            rest_body("linear", [rest_row("BTCUSDT", "Buy", "1", "100", 49)]),
            1.0 + n,
            WALL0,
        )
    assert plane.of(TopicReset) == [] and plane.dp.positions()[BTC].seq == 50


def test_older_pushes_between_accepted_ones_never_reset() -> None:
    plane = Plane()
    _push(plane, 0.5, position_row("BTCUSDT", "Buy", "1", "100", 50))
    for seq in range(51, 54):
        for _ in range(RESET - 1):
            _push(plane, 1.0, position_row("BTCUSDT", "Buy", "1", "100", 40))
        _push(plane, 1.0, position_row("BTCUSDT", "Buy", "1", "100", seq))
    assert plane.of(TopicReset) == [] and plane.fetches() == []


def _retry_delays(seed: int, failures: int = 8) -> list[float]:
    plane = Plane(make_config(snapshot_backoff_base=1.0, snapshot_backoff_cap=30.0, seed=seed))
    [linear, inverse] = plane.up_private(0.0)
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), 0.0, WALL0)
    request, now, delays = linear.request, 0.0, []
    for _ in range(failures):
        plane.dp.rest_answer(request, 503, b"busy", now, WALL0)
        delays.append(plane.of(SnapshotFailed)[-1].retry_in)
        now += delays[-1]
        plane.dp.tick(now, WALL0)
        [retry] = plane.fetches()
        request = retry.request
    return delays


def test_snapshot_retries_are_jittered_deterministically() -> None:
    first, again, other = _retry_delays(seed=7), _retry_delays(seed=7), _retry_delays(seed=8)
    assert first == again  # same seed, same events
    assert first != other
    for n, delay in enumerate(first):  # "equal jitter": between half the step and the whole step
        step = min(30.0, 2.0**n)
        assert step / 2 <= delay <= step
