"""The Venue's markets: real shapes, deltas that rebuild the snapshot, books that apply, time, determinism."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from bybit_hybrid_core._codec import (
    KlineMessage,
    LiquidationMessage,
    OrderbookMessage,
    PublicTradeMessage,
    TickerMessage,
    decode,
)
from bybit_hybrid_core._errors import LocalProtocolError
from bybit_hybrid_core.testing._venue.venue import Venue
from repo_paths import SAMPLES

Json = dict[str, Any]
START = 1_760_000_000_000


def venue(seed: int = 7, **kw: Any) -> Venue:
    return Venue(seed=seed, start_ms=START, **kw)


def sample(name: str) -> Json:
    data: Json = json.loads((SAMPLES / name).read_text())
    return data


def every_topic(v: Venue) -> dict[str, set[str]]:
    """Every topic the venue delivers, per category."""
    out: dict[str, set[str]] = {}
    for cat in ("linear", "inverse", "spot", "option"):
        topics = out.setdefault(cat, set())
        for s in v.symbols(cat):
            topics.add(f"tickers.{s}")
            for depth in (25, 100) if cat == "option" else (1, 50, 200):
                topics.add(f"orderbook.{depth}.{s}")
            if cat != "option":
                topics |= {f"publicTrade.{s}", f"kline.1.{s}"}
            if cat in ("linear", "inverse"):
                topics.add(f"allLiquidation.{s}")
        if cat == "option":
            topics.add("publicTrade.BTC")
    return out


def run(v: Venue, subs: dict[str, set[str]], start: float, seconds: float, dt: float = 0.1) -> list[Any]:
    """Publish every `dt` from `start` for `seconds`; the (category, topic, message) pushes."""
    out: list[Any] = []
    steps = round(seconds / dt)
    for i in range(1, steps + 1):
        out += v.publish(start + i * dt, subs)
    return out


def of(pushes: Iterable[Any], topic: str) -> list[Json]:
    return [m for _, t, m in pushes if t == topic]


# ------------------------------------------------------------------------------------------ topics


@pytest.mark.parametrize(
    ("category", "topic", "exists"),
    [
        ("linear", "tickers.BTCUSDT", True),
        ("linear", "tickers.btcusdt", False),
        ("linear", "tickers.NOPEUSDT", False),
        ("linear", "orderbook.50.BTCUSDT", True),
        ("linear", "orderbook.1000.BTCUSDT", True),
        ("linear", "orderbook.30.BTCUSDT", False),
        ("linear", "orderbook.050.BTCUSDT", False),
        ("linear", "orderbook.25.BTCUSDT", False),
        ("linear", "publicTrade.BTCUSDT", True),
        ("linear", "kline.5.BTCUSDT", True),
        ("linear", "kline.D.BTCUSDT", True),
        ("linear", "kline.7.BTCUSDT", False),
        ("linear", "allLiquidation.SOLUSDT", True),
        ("linear", "position", False),
        ("linear", "tickers.BTCUSD", False),
        ("inverse", "tickers.BTCUSD", True),
        ("inverse", "allLiquidation.ETHUSD", True),
        ("spot", "tickers.ETHUSDT", True),
        ("spot", "allLiquidation.BTCUSDT", False),
        ("spot", "orderbook.200.BTCUSDT", True),
        ("option", "publicTrade.BTC", True),
        ("option", "publicTrade.ETH", False),
        ("option", "kline.1.BTCUSDT", False),
        ("private", "tickers.BTCUSDT", False),
        ("linear", "tickers", False),
        ("linear", "a.b.c.d", False),
    ],
)
def test_topic_exists(category: str, topic: str, exists: bool) -> None:
    assert venue().topic_exists(category, topic) is exists


def test_option_topics_use_the_listed_contracts() -> None:
    v = venue()
    options = v.symbols("option")
    assert len(options) == 2 and all(s.startswith("BTC-") and s.endswith("-C-USDT") for s in options)
    for s in options:
        assert v.topic_exists("option", f"tickers.{s}")
        assert v.topic_exists("option", f"orderbook.25.{s}")
        assert v.topic_exists("option", f"orderbook.100.{s}")
        assert not v.topic_exists("option", f"orderbook.50.{s}")


# ------------------------------------------------------------------------------------------ shapes


def _keys_match(msg: Json, ref: Json) -> None:
    assert set(msg) == set(ref), (msg.get("topic"), set(msg) ^ set(ref))
    data, ref_data = msg["data"], ref["data"]
    if isinstance(data, list):
        assert data and ref_data
        for row in data:
            assert set(row) == set(ref_data[0]), (msg["topic"], set(row) ^ set(ref_data[0]))
    elif msg.get("type") == "snapshot":
        assert set(data) == set(ref_data), (msg["topic"], set(data) ^ set(ref_data))


def test_every_public_message_decodes_and_has_the_samples_keys() -> None:
    v = venue()
    subs = every_topic(v)
    msgs = [(c, t, v.snapshot(c, t, 0.0)) for c, ts in subs.items() for t in sorted(ts)]
    pushes = [m for m in msgs if m[2] is not None] + run(v, subs, 0.0, 3.0)
    v.restart(3.0)
    pushes += run(v, subs, 3.0, 1.0)
    refs = {
        ("linear", "tickers"): sample("public-tickers-linear-snapshot-real.json"),
        ("inverse", "tickers"): sample("public-tickers-linear-snapshot-real.json"),
        ("spot", "tickers"): sample("public-tickers-spot-snapshot-docs.json"),
        ("option", "tickers"): sample("public-tickers-option-snapshot-real-2026.json"),
        ("linear", "orderbook"): sample("public-orderbook-linear-l50-snapshot-real.json"),
        ("option", "orderbook"): sample("public-orderbook-option-l25-snapshot-real-2026.json"),
        ("linear", "publicTrade"): sample("public-trade-linear-real.json"),
        ("option", "publicTrade"): sample("public-trade-option-real-2026.json"),
        ("linear", "kline"): sample("public-kline-linear-docs.json"),
        ("linear", "allLiquidation"): sample("public-allLiquidation-linear-docs.json"),
    }
    seen = set()
    types = {
        "tickers": TickerMessage,
        "orderbook": OrderbookMessage,
        "publicTrade": PublicTradeMessage,
        "kline": KlineMessage,
        "allLiquidation": LiquidationMessage,
    }
    for cat, topic, msg in pushes:
        kind = topic.split(".")[0]
        decoded = decode(json.dumps(msg))
        assert isinstance(decoded, types[kind]) and decoded.topic == topic
        ref = refs.get((cat, kind)) or refs[("linear", kind)]
        if (cat, kind) == ("spot", "publicTrade"):
            ref = {**ref, "data": [{k: v for k, v in ref["data"][0].items() if k != "L"}]}
        _keys_match(msg, ref)
        seen.add((cat, kind))
    assert len(seen) == 15  # every category x kind that exists was exercised


def test_prices_are_on_the_tick_with_the_tick_decimals() -> None:
    v = venue()
    subs = {"linear": {"tickers.BTCUSDT", "orderbook.50.SOLUSDT"}, "inverse": {"orderbook.50.BTCUSD"}}
    for c, ts in subs.items():
        for t in ts:
            v.snapshot(c, t, 0.0)
    pushes = run(v, subs, 0.0, 2.0)
    ticks = {"BTCUSDT": Decimal("0.10"), "SOLUSDT": Decimal("0.010"), "BTCUSD": Decimal("0.50")}
    prices: list[tuple[str, str]] = []
    for _, _, m in pushes:
        if "b" in m["data"]:
            prices += [(m["data"]["s"], p) for p, _ in m["data"]["b"] + m["data"]["a"]]
        else:
            d = m["data"]
            prices += [(d["symbol"], d[k]) for k in ("markPrice", "indexPrice", "lastPrice") if k in d]
    assert len(prices) > 100
    for symbol, text in prices:
        tick = ticks[symbol]
        price = Decimal(text)
        assert price % tick == 0 and price.as_tuple().exponent == tick.as_tuple().exponent, (symbol, text)


# ----------------------------------------------------------------------------------------- tickers


def test_ticker_deltas_carry_only_changed_fields_and_rebuild_the_snapshot() -> None:
    v = venue()
    subs = {"linear": {"tickers.BTCUSDT", "tickers.SOLUSDT"}, "inverse": {"tickers.ETHUSD"}}
    for cat, topics in subs.items():
        for topic in topics:
            snap = v.snapshot(cat, topic, 0.0)
            assert snap is not None and snap["type"] == "snapshot"
            state = dict(snap["data"])
            last_cs, last_ts = snap["cs"], snap["ts"]
            v2_pushes = run(v, {cat: {topic}}, v.next_step_at() - 0.1, 6.0)
            deltas = of(v2_pushes, topic)
            assert len(deltas) > 40
            for d in deltas:
                assert d["type"] == "delta" and d["data"]["symbol"] == state["symbol"]
                changed = {k: val for k, val in d["data"].items() if k != "symbol"}
                assert changed and all(state[k] != val for k, val in changed.items()), changed
                assert d["cs"] > last_cs and d["ts"] > last_ts
                last_cs, last_ts = d["cs"], d["ts"]
                state.update(changed)
            fresh = v.snapshot(cat, topic, v.next_step_at() - 0.1)
            assert fresh is not None and fresh["data"] == state and fresh["cs"] == last_cs


def test_the_mark_moves_on_most_steps_yet_many_deltas_have_no_mark() -> None:
    v = venue(seed=3)
    deltas = of(run(v, {"linear": {"tickers.SOLUSDT"}}, 0.0, 20.0), "tickers.SOLUSDT")
    with_mark = [d for d in deltas if "markPrice" in d["data"]]
    assert len(deltas) >= 190
    assert len(with_mark) > len(deltas) / 2
    assert len(deltas) - len(with_mark) > len(deltas) / 5


def test_spot_and_option_tickers_are_snapshots_every_step() -> None:
    v = venue()
    option = v.symbols("option")[0]
    subs = {"spot": {"tickers.BTCUSDT"}, "option": {f"tickers.{option}"}}
    pushes = run(v, subs, 0.0, 1.0)
    spot, opt = of(pushes, "tickers.BTCUSDT"), of(pushes, f"tickers.{option}")
    assert len(spot) == len(opt) == 10
    assert all(m["type"] == "snapshot" for m in spot + opt)
    assert "markPrice" not in spot[0]["data"] and "usdIndexPrice" in spot[0]["data"]
    assert "cs" not in opt[0] and opt[0]["id"].startswith(f"tickers.{option}-")
    assert [m["ts"] for m in spot] == [START + 100 * i for i in range(1, 11)]


def test_set_mark_shows_in_the_next_delta() -> None:
    v = venue()
    run(v, {}, 0.0, 0.5)
    v.set_mark("linear", "ETHUSDT", "3600.5")
    assert v.mark("linear", "ETHUSDT") == Decimal("3600.50")
    delta = of(v.publish(0.6, {"linear": {"tickers.ETHUSDT"}}), "tickers.ETHUSDT")
    assert delta[0]["data"]["markPrice"] == "3600.50"
    with pytest.raises(LocalProtocolError):
        v.set_mark("linear", "NOPEUSDT", "1")


def test_restart_sends_a_ticker_snapshot_and_books_restart_at_u_1() -> None:
    v = venue()
    subs = {"linear": {"tickers.BTCUSDT", "orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT"}}
    for t in subs["linear"]:
        v.snapshot("linear", t, 0.0)
    run(v, subs, 0.0, 1.0)
    v.restart(1.0)
    after = run(v, subs, 1.0, 0.3)
    ticker = of(after, "tickers.BTCUSDT")
    assert ticker[0]["type"] == "snapshot" and all(m["type"] == "delta" for m in ticker[1:])
    book = of(after, "orderbook.50.BTCUSDT")
    assert book[0]["type"] == "snapshot" and book[0]["data"]["u"] == 1 and len(book[0]["data"]["b"]) == 50
    assert [m["data"]["u"] for m in book[1:]] == list(range(2, len(book) + 1))
    assert of(after, "orderbook.1.BTCUSDT")[0]["data"]["u"] == 1


# ----------------------------------------------------------------------------------------- books


def _apply(book: dict[str, dict[Decimal, Decimal]], msg: Json) -> None:
    data = msg["data"]
    if msg["type"] == "snapshot":
        book["b"] = {Decimal(p): Decimal(s) for p, s in data["b"]}
        book["a"] = {Decimal(p): Decimal(s) for p, s in data["a"]}
        return
    for side in ("b", "a"):
        for p, s in data[side]:
            price, size = Decimal(p), Decimal(s)
            if size == 0:
                assert price in book[side], f"delete of an unknown level {p}"
                del book[side][price]
            else:
                book[side][price] = size


@pytest.mark.parametrize(
    ("category", "topic", "depth"),
    [
        ("linear", "orderbook.50.BTCUSDT", 50),
        ("linear", "orderbook.200.ETHUSDT", 200),
        ("inverse", "orderbook.50.BTCUSD", 50),
        ("spot", "orderbook.50.ETHUSDT", 50),
        ("option", "orderbook.25.{option}", 25),
    ],
)
def test_book_deltas_apply_cleanly_to_the_snapshot(category: str, topic: str, depth: int) -> None:
    v = venue()
    topic = topic.format(option=v.symbols("option")[0])
    snap = v.snapshot(category, topic, 0.0)
    assert snap is not None and snap["type"] == "snapshot"
    book: dict[str, dict[Decimal, Decimal]] = {}
    _apply(book, snap)
    u, seq, ts = snap["data"]["u"], snap["data"]["seq"], snap["ts"]
    msgs = of(run(v, {category: {topic}}, 0.0, 5.0), topic)
    assert len(msgs) > 30
    for m in msgs:
        assert m["type"] == "delta" and m["data"]["u"] == u + 1
        assert m["data"]["seq"] >= seq and m["ts"] > ts and m["cts"] <= m["ts"]
        bids, asks = [Decimal(p) for p, _ in m["data"]["b"]], [Decimal(p) for p, _ in m["data"]["a"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        u, seq, ts = m["data"]["u"], m["data"]["seq"], m["ts"]
        _apply(book, m)
        assert len(book["b"]) == len(book["a"]) == depth
        assert max(book["b"]) < min(book["a"])
    again = v.snapshot(category, topic, 5.0)
    assert again is not None and again["data"]["u"] == u
    rebuilt: dict[str, dict[Decimal, Decimal]] = {}
    _apply(rebuilt, again)
    assert rebuilt == book


def test_level_1_is_snapshot_only_and_resent_when_quiet() -> None:
    v = venue()
    snap = v.snapshot("linear", "orderbook.1.BTCUSDT", 0.0)
    assert snap is not None
    msgs = of(run(v, {"linear": {"orderbook.1.BTCUSDT"}}, 0.0, 3.0), "orderbook.1.BTCUSDT")
    assert msgs and all(m["type"] == "snapshot" for m in msgs)
    assert all(len(m["data"]["b"]) == len(m["data"]["a"]) == 1 for m in msgs)
    us = [m["data"]["u"] for m in msgs]
    assert us == sorted(us) and us[0] == snap["data"]["u"] + 1


def test_a_book_nobody_listens_to_resumes_with_a_higher_u() -> None:
    v = venue()
    topic = "orderbook.50.SOLUSDT"
    first = v.snapshot("linear", topic, 0.0)
    last = of(run(v, {"linear": {topic}}, 0.0, 1.0), topic)[-1]
    run(v, {}, 1.0, 1.0)  # unsubscribed: the book is dropped
    again = v.snapshot("linear", topic, 2.0)
    assert first is not None and again is not None
    assert again["data"]["u"] > last["data"]["u"] > first["data"]["u"]
    assert again["ts"] == START + 2000


# ---------------------------------------------------------------------------------------- tape


def test_public_trades_come_in_bursts_sharing_a_seq() -> None:
    v = venue()
    subs = {"linear": {"publicTrade.BTCUSDT", "tickers.BTCUSDT"}, "option": {"publicTrade.BTC"}}
    pushes = run(v, subs, 0.0, 10.0)
    trades = of(pushes, "publicTrade.BTCUSDT")
    assert 10 < len(trades) < 60
    for m in trades:
        rows = m["data"]
        assert len({r["seq"] for r in rows}) == 1 and all(r["T"] < m["ts"] for r in rows)
        assert all(r["s"] == "BTCUSDT" and r["S"] in ("Buy", "Sell") and Decimal(r["v"]) > 0 for r in rows)
    # the ticker's lastPrice follows the tape
    last_trade = trades[-1]["data"][-1]["p"]
    lasts = [m["data"]["lastPrice"] for m in of(pushes, "tickers.BTCUSDT") if "lastPrice" in m["data"]]
    assert lasts[-1] == last_trade
    options = of(pushes, "publicTrade.BTC")
    assert {r["s"] for m in options for r in m["data"]} == set(v.symbols("option"))


def test_klines_every_second_and_a_confirmed_candle_at_the_minute() -> None:
    v = venue()
    topic = "kline.1.ETHUSDT"
    minute = (60_000 - START % 60_000) / 1000  # `now` of the first minute boundary
    v.publish(minute - 5.0, {})
    msgs = of(run(v, {"linear": {topic}}, minute - 5.0, 10.0), topic)
    confirmed = [m["data"][0] for m in msgs if m["data"][0]["confirm"]]
    assert len(confirmed) == 1
    closed = confirmed[0]
    assert closed["start"] == START // 60_000 * 60_000 and closed["end"] == closed["start"] + 59_999
    assert len(msgs) == 11  # 10 seconds, one confirm
    later = [m["data"][0] for m in msgs if not m["data"][0]["confirm"] and m["ts"] > closed["end"]]
    assert later and all(k["start"] == closed["end"] + 1 for k in later)
    for k in (m["data"][0] for m in msgs):
        assert Decimal(k["low"]) <= min(Decimal(k["open"]), Decimal(k["close"])) <= Decimal(k["high"])


def test_all_liquidation_pushes_on_half_seconds() -> None:
    v = venue()
    v.open_position("linear", "SOLUSDT", "Buy", "10", 0.0)
    v.liquidate("linear", "SOLUSDT", 0, 0.05)
    msgs = of(run(v, {"linear": {"allLiquidation.SOLUSDT"}}, 0.0, 60.0), "allLiquidation.SOLUSDT")
    assert msgs[0]["data"][0]["S"] == "Buy" and msgs[0]["data"][0]["v"] == "10.0"
    assert all((m["ts"] - START) % 500 == 0 for m in msgs)


# ---------------------------------------------------------------------------------- time, seeds


def test_a_long_jump_is_capped_and_deltas_still_rebuild_the_state() -> None:
    v = venue(max_catch_up=5)
    topic = "tickers.BTCUSDT"
    snap = v.snapshot("linear", topic, 0.0)
    assert snap is not None
    state = dict(snap["data"])
    pushes = v.publish(86_400.0, {"linear": {topic, "orderbook.50.BTCUSDT"}})
    assert len(of(pushes, topic)) <= 5 and len(pushes) <= 11
    for d in of(pushes, topic):
        state.update(d["data"])
    cs = of(pushes, topic)[-1]["cs"]
    expected = {**snap, "data": state, "cs": cs, "ts": START + 86_400_000}
    assert v.snapshot("linear", topic, 86_400.0) == expected
    assert v.next_step_at() == pytest.approx(86_400.1)


def test_same_seed_same_messages_other_seed_other_messages() -> None:
    def script(seed: int) -> list[Any]:
        v = venue(seed)
        subs = every_topic(v)
        out: list[Any] = [v.snapshot(c, t, 0.0) for c, ts in subs.items() for t in sorted(ts)]
        out += run(v, subs, 0.0, 2.0)
        out += v.place_order("linear", "BTCUSDT", "Buy", "0.01", 2.0)
        return out

    assert script(11) == script(11)
    assert script(11) != script(12)


def test_subscriptions_do_not_change_the_market() -> None:
    a, b = venue(5), venue(5)
    for t in ("orderbook.200.BTCUSDT", "orderbook.1.BTCUSDT"):
        a.snapshot("linear", t, 0.0)
    busy = run(a, {"linear": {"tickers.ETHUSDT", "orderbook.200.BTCUSDT", "orderbook.1.BTCUSDT"}}, 0.0, 2.0)
    quiet = run(b, {"linear": {"tickers.ETHUSDT"}}, 0.0, 2.0)
    assert of(busy, "tickers.ETHUSDT") == of(quiet, "tickers.ETHUSDT")


def test_add_symbol_infers_tick_and_qty_step() -> None:
    v = venue()
    v.add_symbol("linear", "XRPUSDT", "3.3298")
    assert v.topic_exists("linear", "tickers.XRPUSDT") and "XRPUSDT" in v.symbols("linear")
    inst = v.instrument("linear", "XRPUSDT")
    assert inst.tick == Decimal("0.00001") and inst.qty_step == Decimal("1") and inst.settle == "USDT"
    snap = v.snapshot("linear", "tickers.XRPUSDT", 0.0)
    assert snap is not None and len(snap["data"]["markPrice"].split(".")[1]) == 5
    v.add_symbol("inverse", "SOLUSD", 150, tick="0.01")
    assert v.instrument("inverse", "SOLUSD").settle == "SOL"
    with pytest.raises(LocalProtocolError):
        v.add_symbol("linear", "XRPUSDT", "3")
    with pytest.raises(LocalProtocolError):
        v.add_symbol("futures", "XRPUSDT", "3")
    with pytest.raises(LocalProtocolError):
        v.add_symbol("linear", "ADAUSDT", "-1")


def test_a_contract_a_few_ticks_above_zero_never_shows_a_price_below_one_tick() -> None:
    v = venue()
    v.add_symbol("linear", "TINYUSDT", "0.0000003", tick="0.0000001")
    subs = {"linear": {"tickers.TINYUSDT", "orderbook.50.TINYUSDT", "publicTrade.TINYUSDT"}}
    book = v.snapshot("linear", "orderbook.50.TINYUSDT", 0.0)
    pushes = run(v, subs, 0.0, 10.0)
    assert book is not None and 1 <= len(book["data"]["b"]) < 50 and len(book["data"]["a"]) == 50
    prices = [
        Decimal(p) for _, _, m in pushes if "b" in m["data"] for p, _ in m["data"]["b"] + m["data"]["a"]
    ]
    prices += [Decimal(r["p"]) for m in of(pushes, "publicTrade.TINYUSDT") for r in m["data"]]
    for m in of(pushes, "tickers.TINYUSDT"):
        prices += [Decimal(m["data"][k]) for k in ("markPrice", "bid1Price", "ask1Price") if k in m["data"]]
    assert len(prices) > 100 and min(prices) >= Decimal("0.0000001")
