"""The Venue's account: fills in Bybit's order and shapes, PnL by hand, flips, hedge, liquidation, REST."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bybit_hybrid_core._codec import (
    ExecutionMessage,
    FastExecutionMessage,
    OrderMessage,
    PositionMessage,
    WalletMessage,
    decode,
)
from bybit_hybrid_core._errors import LocalProtocolError
from bybit_hybrid_core._events import Position, PositionKey, RestRequest
from bybit_hybrid_core._plane.rest import parse_page
from bybit_hybrid_core.testing._venue.venue import OrderRejected, Venue
from repo_paths import SAMPLES

Json = dict[str, Any]
Pushes = list[tuple[str, Json]]
START = 1_760_000_000_000
FILL_TOPICS = ["execution.fast", "order", "execution", "position", "wallet"]


def venue(seed: int = 7) -> Venue:
    return Venue(seed=seed, start_ms=START)


def sample(name: str) -> Json:
    data: Json = json.loads((SAMPLES / name).read_text())
    return data


def rows(pushes: Pushes, topic: str) -> list[Json]:
    return [row for t, m in pushes if t == topic for row in m["data"]]


def last_position(pushes: Pushes) -> Json:
    return rows(pushes, "position")[-1]


def client_view(
    pushes: Pushes, held: dict[PositionKey, Position] | None = None
) -> dict[PositionKey, Position]:
    """What a client rebuilds from the position pushes (decoded by the codec; "0"/"" mean unset)."""
    book = dict(held or {})
    for topic, msg in pushes:
        if topic != "position":
            continue
        decoded = decode(json.dumps(msg))
        assert isinstance(decoded, PositionMessage)
        for r in decoded.data:
            key = (r.category, r.symbol, r.position_idx)
            if r.size == 0 or r.side in ("", "None"):
                book.pop(key, None)
                continue
            book[key] = Position(
                category=r.category,
                symbol=r.symbol,
                position_idx=r.position_idx,
                side=r.side,
                size=r.size,
                avg_price=r.entry_price or Decimal(0),
                leverage=r.leverage,
                liq_price=r.liq_price or None,
                take_profit=r.take_profit or None,
                stop_loss=r.stop_loss or None,
                trailing_stop=r.trailing_stop or None,
                position_status=r.position_status,
                seq=r.seq,
                updated_ms=r.updated_time,
            )
    return book


# ---------------------------------------------------------------------------------------- one fill


def test_a_fill_pushes_five_topics_in_bybits_order_with_one_seq() -> None:
    v = venue()
    book = v.snapshot("linear", "orderbook.1.BTCUSDT", 1.0)
    assert book is not None
    pushes = v.place_order("linear", "BTCUSDT", "Buy", "0.01", 1.0, order_link_id="mine-1")
    assert [t for t, _ in pushes] == FILL_TOPICS
    types = [FastExecutionMessage, OrderMessage, ExecutionMessage, PositionMessage, WalletMessage]
    for (_, msg), kind in zip(pushes, types, strict=True):
        assert isinstance(decode(json.dumps(msg)), kind)
        assert msg["creationTime"] == START + 1000
    fast, order, execution, position, _ = (m for _, m in pushes)
    seq = fast["data"][0]["seq"]
    assert "id" not in fast
    assert execution["data"][0]["seq"] == position["data"][0]["seq"] == seq
    assert order["id"] == execution["id"] and order["id"].endswith(f"_BTCUSDT_{seq}")
    assert fast["data"][0]["execId"] == execution["data"][0]["execId"]
    assert fast["data"][0]["orderId"] == order["data"][0]["orderId"] == execution["data"][0]["orderId"]
    assert order["data"][0]["orderLinkId"] == "mine-1" and order["data"][0]["orderStatus"] == "Filled"
    assert fast["data"][0]["execPrice"] == book["data"]["a"][0][0]  # a market buy takes the ask
    again = v.place_order("linear", "BTCUSDT", "Sell", "0.004", 1.5)
    assert again[0][1]["data"][0]["seq"] > seq
    assert last_position(again)["size"] == "0.006"


def test_private_rows_have_the_samples_keys() -> None:
    v = venue()
    pushes = v.place_order("linear", "SOLUSDT", "Buy", "2", 1.0)
    ref = {
        "execution.fast": sample("private-execution-fast-docs.json"),
        "order": sample("private-order-linear-filled-real-2025-10.json"),
        "execution": sample("private-execution-linear-docs.json"),
        "position": sample("private-position-linear-real-2025-10.json"),
        "wallet": sample("private-wallet-real-2026.json"),
    }
    extra = {"position": {"breakEvenPrice", "openTime"}}  # newer fields (2026 samples, BYBIT_V5.md §6)
    missing = {"execution": {"extraFees"}}  # only on accounts that pay GST-like extra fees
    for topic, msg in pushes:
        assert set(msg) == set(ref[topic])
        row, ref_row = msg["data"][0], ref[topic]["data"][0]
        assert set(row) == (set(ref_row) | extra.get(topic, set())) - missing.get(topic, set()), topic
        for key, value in ref_row.items():
            if key in row:
                assert type(row[key]) is type(value), (topic, key)
    wallet = rows(pushes, "wallet")[0]
    assert set(wallet["coin"][0]) == set(ref["wallet"]["data"][0]["coin"][0])


# ------------------------------------------------------------------------------------------ PnL


def test_average_price_is_weighted_on_growth() -> None:
    v = venue()
    v.open_position("linear", "BTCUSDT", "Buy", "0.010", 1.0, price="67000")
    pushes = v.open_position("linear", "BTCUSDT", "Buy", "0.030", 2.0, price="68000")
    assert last_position(pushes)["entryPrice"] == "67750"  # (670 + 2040) / 0.04
    v.open_position("linear", "ETHUSDT", "Sell", "0.01", 1.0, price="3500")
    pushes = v.open_position("linear", "ETHUSDT", "Sell", "0.02", 2.0, price="3500.01")
    assert last_position(pushes)["entryPrice"] == "3500.00666667"  # 105.0002 / 0.03, 8 decimals
    assert v.positions()[("linear", "ETHUSDT", 0)].avg_price == Decimal("3500.00666667")


def test_partial_close_realises_pnl_by_hand() -> None:
    v = venue()
    v.open_position("linear", "BTCUSDT", "Buy", "0.010", 1.0, price="67000")
    pushes = v.close_position("linear", "BTCUSDT", 2.0, qty="0.004", price="68000")
    execution = rows(pushes, "execution")[0]
    open_fee, close_fee = (
        Decimal("0.010") * 67000 * Decimal("0.00055"),
        Decimal("0.004") * 68000 * Decimal("0.00055"),
    )
    assert Decimal(execution["execPnl"]) == (68000 - 67000) * Decimal("0.004")
    assert Decimal(execution["execFee"]) == close_fee and execution["closedSize"] == "0.004"
    assert Decimal(rows(pushes, "order")[0]["closedPnl"]) == 4 - close_fee
    position = last_position(pushes)
    assert position["size"] == "0.006" and position["entryPrice"] == "67000" and position["side"] == "Buy"
    assert (
        Decimal(position["curRealisedPnl"]) == Decimal(position["cumRealisedPnl"]) == 4 - open_fee - close_fee
    )
    usdt = rows(pushes, "wallet")[0]["coin"][0]
    assert usdt["coin"] == "USDT" and Decimal(usdt["walletBalance"]) == 100_000 + 4 - open_fee - close_fee
    # a short realises the other way round
    v.open_position("linear", "ETHUSDT", "Sell", "2", 3.0, price="3500")
    pushes = v.close_position("linear", "ETHUSDT", 4.0, qty="0.5", price="3400")
    assert Decimal(rows(pushes, "execution")[0]["execPnl"]) == 50


def test_inverse_pnl_and_average_by_hand() -> None:
    v = venue()
    v.open_position("inverse", "BTCUSD", "Buy", 1000, 1.0, price="50000")
    pushes = v.close_position("inverse", "BTCUSD", 2.0, qty=400, price="62500")
    execution = rows(pushes, "execution")[0]
    assert Decimal(execution["execPnl"]) == Decimal(400) * (
        Decimal(1) / 50000 - Decimal(1) / 62500
    )  # 0.0016 BTC
    fees = (Decimal(1000) / 50000 + Decimal(400) / 62500) * Decimal("0.00055")
    assert Decimal(last_position(pushes)["curRealisedPnl"]) == Decimal("0.0016") - fees
    assert execution["feeCurrency"] == "BTC" and rows(pushes, "wallet")[0]["coin"][0]["coin"] == "BTC"
    pushes = v.open_position("inverse", "BTCUSD", "Buy", 1400, 3.0, price="62500")
    # contracts over coin value: 2000 / (600/50000 + 1400/62500)
    expected = (Decimal(2000) / (Decimal(600) / 50000 + Decimal(1400) / 62500)).quantize(Decimal("1E-8"))
    assert Decimal(last_position(pushes)["entryPrice"]) == expected


def test_one_way_flip_closes_then_opens_the_other_side() -> None:
    v = venue()
    v.open_position("linear", "BTCUSDT", "Buy", "0.01", 1.0, price="67000")
    pushes = v.place_order("linear", "BTCUSDT", "Sell", "0.03", 2.0, price="66000")
    assert [t for t, _ in pushes] == FILL_TOPICS and len(rows(pushes, "position")) == 1
    execution, position = rows(pushes, "execution")[0], last_position(pushes)
    assert execution["closedSize"] == "0.010" and Decimal(execution["execPnl"]) == -10
    assert (position["side"], position["size"], position["entryPrice"]) == ("Sell", "0.020", "66000")
    fees = (Decimal("0.01") * 67000 + Decimal("0.03") * 66000) * Decimal("0.00055")
    assert Decimal(position["cumRealisedPnl"]) == -10 - fees
    held = v.positions()[("linear", "BTCUSDT", 0)]
    assert (held.side, held.size, held.avg_price) == ("Sell", Decimal("0.02"), Decimal(66000))
    assert held.liq_price is not None and held.liq_price > 66000


def test_closing_pushes_a_flat_row() -> None:
    v = venue()
    v.open_position("linear", "ETHUSDT", "Sell", "0.5", 1.0)
    pushes = v.close_position("linear", "ETHUSDT", 2.0)
    flat = last_position(pushes)
    assert (flat["side"], flat["size"], flat["positionIdx"], flat["liqPrice"]) == ("", "0", 0, "")
    assert flat["seq"] == rows(pushes, "execution")[0]["seq"] and flat["positionStatus"] == "Normal"
    assert v.positions() == {} and v.close_position("linear", "ETHUSDT", 3.0) == []


def test_hedge_mode_legs() -> None:
    v = venue()
    v.set_hedge_mode("linear", "BTCUSDT", True)
    with pytest.raises(OrderRejected) as refused:
        v.place_order("linear", "BTCUSDT", "Buy", "0.01", 1.0)
    assert refused.value.ret_code == 10001
    v.open_position("linear", "BTCUSDT", "Buy", "0.01", 1.0, price="67000", position_idx=1)
    v.open_position("linear", "BTCUSDT", "Sell", "0.02", 1.0, price="67000", position_idx=2)
    both = v.positions()
    assert both[("linear", "BTCUSDT", 1)].side == "Buy" and both[("linear", "BTCUSDT", 2)].side == "Sell"
    with pytest.raises(LocalProtocolError):
        v.set_hedge_mode("linear", "BTCUSDT", False)
    # the other side on a leg closes it and never flips it
    pushes = v.place_order("linear", "BTCUSDT", "Sell", "0.005", 2.0, position_idx=1, price="67100")
    assert last_position(pushes)["size"] == "0.005" and Decimal(
        rows(pushes, "execution")[0]["execPnl"]
    ) == Decimal("0.5")
    pushes = v.place_order("linear", "BTCUSDT", "Buy", "0.05", 3.0, position_idx=2)
    flat = last_position(pushes)
    assert (flat["positionIdx"], flat["side"], flat["size"]) == (2, "", "0")
    assert rows(pushes, "execution")[0]["execQty"] == "0.020"
    assert list(v.positions()) == [("linear", "BTCUSDT", 1)]
    with pytest.raises(OrderRejected):
        v.place_order("linear", "BTCUSDT", "Buy", "0.01", 3.0, position_idx=2, reduce_only=True)
    v.close_position("linear", "BTCUSDT", 4.0, position_idx=1)
    v.set_hedge_mode("linear", "BTCUSDT", False)
    assert v.open_position("linear", "BTCUSDT", "Buy", "0.01", 5.0)
    with pytest.raises(LocalProtocolError):
        v.set_hedge_mode("option", v.symbols("option")[0], True)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("linear", "NOPEUSDT", "Buy", "1"), 10001),
        (("linear", "BTCUSDT", "Long", "1"), 10001),
        (("linear", "BTCUSDT", "Buy", "0"), 10001),
        (("linear", "BTCUSDT", "Buy", "-1"), 10001),
    ],
)
def test_bad_orders_are_refused_with_bybits_codes(args: tuple[str, str, str, str], code: int) -> None:
    v = venue()
    with pytest.raises(OrderRejected) as refused:
        v.place_order(*args, 1.0)
    assert refused.value.ret_code == code and refused.value.ret_msg
    assert v.positions() == {}


def test_reduce_only_never_opens_or_flips() -> None:
    v = venue()
    with pytest.raises(OrderRejected) as refused:
        v.place_order("linear", "SOLUSDT", "Sell", "1", 1.0, reduce_only=True)
    assert refused.value.ret_code == 110017
    v.open_position("linear", "SOLUSDT", "Buy", "1", 1.0)
    with pytest.raises(OrderRejected):
        v.place_order("linear", "SOLUSDT", "Buy", "1", 1.0, reduce_only=True)
    pushes = v.place_order("linear", "SOLUSDT", "Sell", "5", 2.0, reduce_only=True)
    assert rows(pushes, "execution")[0]["execQty"] == "1.0" and last_position(pushes)["size"] == "0"
    assert rows(pushes, "order")[0]["reduceOnly"] is True


def test_liquidation_pushes_a_liq_row_then_goes_flat() -> None:
    v = venue()
    v.open_position("linear", "SOLUSDT", "Buy", "1", 1.0, price="150")
    liq = v.positions()[("linear", "SOLUSDT", 0)].liq_price
    assert liq == Decimal("135.750")  # 150 * (1 - 1/10 + 0.005)
    pushes = v.liquidate("linear", "SOLUSDT", 0, 2.0)
    assert [t for t, _ in pushes] == ["position", "order", "execution", "position", "wallet"]
    first, flat = rows(pushes, "position")
    assert first["positionStatus"] == "Liq" and first["size"] == "1.0" and first["side"] == "Buy"
    assert (flat["positionStatus"], flat["side"], flat["size"]) == ("Normal", "", "0")
    execution = rows(pushes, "execution")[0]
    assert execution["execType"] == "BustTrade" and execution["execPrice"] == "135.750"
    assert Decimal(execution["execPnl"]) == Decimal("-14.25") and execution["createType"] == "CreateByLiq"
    assert first["seq"] < flat["seq"] == execution["seq"]
    assert v.positions() == {} and client_view(pushes) == {}
    with pytest.raises(LocalProtocolError):
        v.liquidate("linear", "SOLUSDT", 0, 3.0)


def test_a_liq_row_is_an_open_position_to_the_client() -> None:
    v = venue()
    opened = v.open_position("inverse", "ETHUSD", "Sell", 500, 1.0)
    pushes = v.liquidate("inverse", "ETHUSD", 0, 2.0)
    during = client_view(opened + pushes[:1])
    assert during[("inverse", "ETHUSD", 0)].position_status == "Liq"


def test_spot_fills_move_balances_and_push_no_position() -> None:
    v = venue()
    pushes = v.place_order("spot", "BTCUSDT", "Buy", "0.01", 1.0)
    assert [t for t, _ in pushes] == ["execution.fast", "order", "execution", "wallet"]
    coins = {c["coin"]: c for c in rows(pushes, "wallet")[0]["coin"]}
    assert Decimal(coins["BTC"]["walletBalance"]) == Decimal("1.01")
    price, fee = (
        Decimal(rows(pushes, "execution")[0]["execPrice"]),
        Decimal(rows(pushes, "execution")[0]["execFee"]),
    )
    assert Decimal(coins["USDT"]["walletBalance"]) == 100_000 - price * Decimal("0.01") - fee
    assert v.positions() == {}


# ------------------------------------------------------------------------------- the client's view

_SYMBOLS = [("linear", "BTCUSDT"), ("linear", "ETHUSDT"), ("inverse", "BTCUSD"), ("linear", "SOLUSDT")]
_op = st.tuples(
    st.sampled_from(range(len(_SYMBOLS))),
    st.sampled_from(("Buy", "Sell")),
    st.integers(1, 40),
    st.booleans(),  # reduce-only
    st.sampled_from((1, 2)),  # hedge leg (ETHUSDT is in hedge mode)
    st.integers(0, 30),  # 1 in 31: liquidate instead
)


@given(st.lists(_op, min_size=1, max_size=25), st.integers(0, 3))
def test_positions_are_what_the_client_rebuilds_and_rest_lists_them(ops: list[Any], seed: int) -> None:
    v = venue(seed)
    v.set_hedge_mode("linear", "ETHUSDT", True)
    pushes: Pushes = []
    now = 0.0
    for sym, side, lots, reduce_only, leg, dice in ops:
        now += 0.25
        v.publish(now, {})
        cat, symbol = _SYMBOLS[sym]
        idx = leg if symbol == "ETHUSDT" else 0
        if dice == 0 and (cat, symbol, idx) in v.positions():
            pushes += v.liquidate(cat, symbol, idx, now)
            continue
        qty = v.instrument(cat, symbol).qty_step * lots
        try:
            pushes += v.place_order(cat, symbol, side, qty, now, idx, reduce_only)
        except OrderRejected as refused:
            assert refused.ret_code == 110017  # only reduce-only orders with nothing to reduce are refused
    assert client_view(pushes) == v.positions()
    seqs = [r["seq"] for r in rows(pushes, "execution")]
    assert seqs == sorted(set(seqs))
    # every realised amount lands in the wallet
    usdt = [r for r in rows(pushes, "execution") if r["feeCurrency"] == "USDT"]
    realised = sum((Decimal(r["execPnl"]) - Decimal(r["execFee"]) for r in usdt), Decimal(0))
    assert v.account.balances["USDT"] == 100_000 + realised
    snapshot: dict[PositionKey, Position] = {}
    for cat, settle in (("linear", "USDT"), ("inverse", "")):
        snapshot |= _rest_snapshot(v, cat, settle, limit=1 + seed)
    assert snapshot == v.positions()


def _rest_snapshot(v: Venue, category: str, settle: str, limit: int) -> dict[PositionKey, Position]:
    """Page through the REST answer as the core does, parsed by the core's own `parse_page`."""
    out: dict[PositionKey, Position] = {}
    cursor = ""
    for _ in range(50):
        query = {"category": category, "limit": str(limit), **({"settleCoin": settle} if settle else {})}
        if cursor:
            query["cursor"] = cursor
        body = msgspec.json.encode(v.rest_position_list(query, now=100.0))
        request = RestRequest(
            id=1, method="GET", url="http://127.0.0.1/v5/position/list", headers=(), category=category
        )
        page = parse_page(request, 200, body, 100.0)
        for position, _ in page.rows:
            assert position.key not in out, "a position listed twice"
            out[position.key] = position
        cursor = page.next_cursor
        if not cursor:
            return out
    raise AssertionError("pagination did not end")


# --------------------------------------------------------------------------------------------- REST


def _open_many(v: Venue) -> None:
    v.set_hedge_mode("linear", "ETHUSDT", True)
    v.open_position("linear", "BTCUSDT", "Buy", "0.01", 1.0)
    v.open_position("linear", "ETHUSDT", "Buy", "0.1", 1.0, position_idx=1)
    v.open_position("linear", "ETHUSDT", "Sell", "0.2", 1.0, position_idx=2)
    v.open_position("linear", "SOLUSDT", "Sell", "3", 1.0)
    v.add_symbol("linear", "XRPUSDT", "3.3")
    v.open_position("linear", "XRPUSDT", "Buy", "100", 1.0)
    v.add_symbol("linear", "BTCPERP", "67000")
    v.open_position("linear", "BTCPERP", "Buy", "0.001", 1.0)
    v.open_position("inverse", "BTCUSD", "Sell", 100, 1.0)
    v.open_position("inverse", "ETHUSD", "Buy", 100, 1.0)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 20, 200])
def test_rest_pages_cover_every_position_exactly_once(limit: int) -> None:
    v = venue()
    _open_many(v)
    seen: list[tuple[str, int]] = []
    query = {"category": "linear", "settleCoin": "USDT", "limit": str(limit)}
    pages = 0
    while True:
        answer = v.rest_position_list(query, now=2.0)
        assert answer["retCode"] == 0 and answer["retMsg"] == "OK" and answer["time"] == START + 2000
        result = answer["result"]
        assert result["category"] == "linear" and len(result["list"]) <= limit
        seen += [(r["symbol"], r["positionIdx"]) for r in result["list"]]
        pages += 1
        if not result["nextPageCursor"]:
            break
        query = {**query, "cursor": result["nextPageCursor"]}
    expected = sorted((s, i) for c, s, i in v.positions() if c == "linear" and s != "BTCPERP")
    assert sorted(seen) == expected and len(seen) == len(set(seen)) == 5
    assert pages == -(-5 // limit)


def test_rest_rows_and_filters() -> None:
    v = venue()
    _open_many(v)
    answer = v.rest_position_list({"category": "linear", "symbol": "ETHUSDT"})
    listed = answer["result"]["list"]
    assert [(r["symbol"], r["positionIdx"], r["side"]) for r in listed] == [
        ("ETHUSDT", 1, "Buy"),
        ("ETHUSDT", 2, "Sell"),
    ]
    assert "avgPrice" in listed[0] and "entryPrice" not in listed[0] and "category" not in listed[0]
    assert isinstance(listed[0]["seq"], int) and isinstance(listed[0]["positionIdx"], int)
    both = v.rest_position_list({"category": "linear", "symbol": "BTCUSDT,SOLUSDT", "settleCoin": "USDC"})
    assert [r["symbol"] for r in both["result"]["list"]] == ["BTCUSDT", "SOLUSDT"]  # symbol wins
    usdc = v.rest_position_list({"category": "linear", "settleCoin": "USDC"})
    assert [r["symbol"] for r in usdc["result"]["list"]] == ["BTCPERP"]
    inverse = v.rest_position_list({"category": "inverse"})
    assert [r["symbol"] for r in inverse["result"]["list"]] == ["BTCUSD", "ETHUSD"]
    assert v.rest_position_list({"category": "option"})["result"]["list"] == []
    plain = v.rest_position_list(
        {"category": "linear", "settleCoin": "USDT", "limit": "2", "cursor": "SOLUSDT:0"}
    )
    assert [r["symbol"] for r in plain["result"]["list"]] == ["SOLUSDT", "XRPUSDT"]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({}, "Category"),
        ({"category": "spot"}, "Category"),
        ({"category": "Linear", "settleCoin": "USDT"}, "Category"),
        ({"category": "linear"}, "symbol or settleCoin"),
        ({"category": "linear", "settleCoin": "USDT", "limit": "0"}, "limit"),
        ({"category": "linear", "settleCoin": "USDT", "limit": "201"}, "limit"),
        ({"category": "inverse", "limit": "ten"}, "limit"),
        ({"category": "inverse", "cursor": "garbage"}, "cursor"),
    ],
)
def test_rest_refuses_bad_queries_like_bybit(query: dict[str, str], text: str) -> None:
    answer = venue().rest_position_list(query)
    assert answer["retCode"] == 10001 and text in answer["retMsg"]
    assert answer["result"] == {} and answer["retExtInfo"] == {} and isinstance(answer["time"], int)
