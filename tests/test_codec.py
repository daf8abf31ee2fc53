"""The codec against every real Bybit V5 sample: classes, values, error texts, encoders, fuzz."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from bybit_hybrid_core._codec import (
    AuthReply,
    ExecutionMessage,
    FastExecutionMessage,
    GreeksMessage,
    KlineMessage,
    LiquidationMessage,
    Message,
    OpReply,
    OrderbookMessage,
    OrderMessage,
    OtherTopicMessage,
    Pong,
    PositionMessage,
    PublicTradeMessage,
    SubscribeReply,
    TickerData,
    TickerMessage,
    TradeReply,
    WalletMessage,
    decode,
    encode_auth,
    encode_ping,
    encode_subscribe,
    encode_unsubscribe,
)
from bybit_hybrid_core._codec import frames as _codec
from bybit_hybrid_core._errors import DecodeError
from repo_paths import SAMPLES

MESSAGE_TYPES = typing.get_args(Message)

# File-name prefix -> expected class; the first match wins, and every inbound sample must match one.
FAMILIES: list[tuple[str, type]] = [
    ("auth-", AuthReply),
    ("pong-", Pong),
    ("private-execution-fast-", FastExecutionMessage),
    ("private-execution-", ExecutionMessage),
    ("private-greeks-", GreeksMessage),
    ("private-order-create-on-private-stream", OpReply),
    ("private-order-", OrderMessage),
    ("private-position-", PositionMessage),
    ("private-wallet-", WalletMessage),
    ("public-allLiquidation-", LiquidationMessage),
    ("public-liquidation-", LiquidationMessage),
    ("public-kline-", KlineMessage),
    ("public-orderbook-", OrderbookMessage),
    ("public-tickers-", TickerMessage),
    ("public-trade-", PublicTradeMessage),
    ("subscribe-failure-on-trade-endpoint", TradeReply),
    ("subscribe-", SubscribeReply),
    ("unsubscribe-", SubscribeReply),
    ("trade-", TradeReply),
]

INBOUND = sorted(p for p in SAMPLES.glob("*.json") if not p.name.startswith("request-"))


def sample(name: str) -> Any:
    return decode((SAMPLES / name).read_bytes())


def expected_class(name: str) -> type:
    for prefix, cls in FAMILIES:
        if name.startswith(prefix):
            return cls
    raise AssertionError(f"no expected class for new sample {name}: add it to FAMILIES")


# ------------------------------------------------------------------------------------- every sample


def test_there_are_samples() -> None:
    assert len(INBOUND) >= 90


@pytest.mark.parametrize("path", INBOUND, ids=lambda p: p.name)
def test_every_inbound_sample_decodes_to_its_family(path: Path) -> None:
    raw = path.read_bytes()
    msg = decode(raw)
    assert type(msg) is expected_class(path.name)
    assert decode(raw.decode()) == msg  # str and bytes give the same result
    compact = json.dumps(json.loads(raw), separators=(",", ":"))
    # Pretty-printed files and compact wire frames agree (compared as JSON: Raw fields keep whitespace).
    assert json.loads(msgspec.json.encode(decode(compact))) == json.loads(msgspec.json.encode(msg))


def _wire_names(cls: Any) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(cls)}


def _unknown_keys(obj: dict[str, Any], decoded: Any) -> set[str]:
    missing = set(obj) - _wire_names(type(decoded))
    for key, value in obj.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and key not in missing:
            attr = next(f.name for f in msgspec.structs.fields(decoded) if f.encode_name == key)
            for sub, sub_dec in zip(value, getattr(decoded, attr), strict=True):
                missing |= {f"{key}.{k}" for k in _unknown_keys(sub, sub_dec)}
    return missing


@pytest.mark.parametrize("path", [p for p in INBOUND if '"topic"' in p.read_text()], ids=lambda p: p.name)
def test_no_field_of_a_topic_sample_is_silently_dropped(path: Path) -> None:
    raw = json.loads(path.read_bytes())
    msg = decode(path.read_bytes())
    if path.name.startswith("public-liquidation-"):
        return  # the deprecated shape is converted to allLiquidation rows (checked below)
    assert set(raw) - _wire_names(type(msg)) == set()
    rows = raw["data"] if isinstance(raw["data"], list) else [raw["data"]]
    decoded = msg.data if isinstance(msg.data, tuple) else (msg.data,)
    for row, row_msg in zip(rows, decoded, strict=True):
        assert _unknown_keys(row, row_msg) == set()


# --------------------------------------------------------------------------------------- tickers


def test_linear_ticker_snapshot_values() -> None:
    msg = sample("public-tickers-linear-snapshot-real.json")
    t = msg.data
    assert (msg.topic, msg.type, msg.ts, msg.cs) == (
        "tickers.BTCUSDT",
        "snapshot",
        1786659827683,
        764144442982,
    )
    assert t.mark_price == Decimal("63560.80") and isinstance(t.mark_price, Decimal)
    assert t.prev_price24h == Decimal("63469.20") and t.prev_price1h == Decimal("63413.60")
    assert t.next_funding_time == 1786665600000
    assert t.funding_interval_hour == 8
    assert t.pre_open_price is None and t.pre_qty is None and t.cur_pre_listing_phase is None  # "" -> None
    assert t.usd_index_price is UNSET and t.mark_price_iv is UNSET


def test_dated_futures_ticker_empty_funding_is_none() -> None:
    t = sample("public-tickers-linear-futures-snapshot-docs.json").data
    assert t.funding_rate is None and t.next_funding_time is None
    assert t.delivery_time == datetime(2025, 12, 26, 8, 0, tzinfo=UTC)
    assert t.basis == Decimal("-4730.84") and t.basis_rate_year == Decimal("0.30655351")


def test_ticker_delta_leaves_absent_fields_unset() -> None:
    msg = sample("public-tickers-linear-delta-real.json")
    assert msg.type == "delta"
    assert msg.data.index_price == Decimal("63585.74")
    assert msg.data.mark_price is UNSET and msg.data.funding_rate is UNSET and msg.data.last_price is UNSET


def test_ticker_delta_merges_into_snapshot_with_replace() -> None:
    snap = sample("public-tickers-linear-snapshot-real.json").data
    delta = sample("public-tickers-linear-delta-real-2.json").data
    changed = {f: v for f in delta.__struct_fields__ if (v := getattr(delta, f)) is not UNSET}
    merged = msgspec.structs.replace(snap, **changed)
    assert merged.mark_price == Decimal("86716.30") and merged.last_price == snap.last_price


def test_spot_and_option_tickers() -> None:
    spot = sample("public-tickers-spot-snapshot-docs.json").data
    assert spot.usd_index_price == Decimal("21120.2400136") and spot.mark_price is UNSET
    opt = sample("public-tickers-option-snapshot-real-2026.json")
    assert opt.cs is None and opt.id is not None
    assert opt.data.mark_price_iv == Decimal("0.3868") and opt.data.bid_price == Decimal("22915")
    assert opt.data.delta == Decimal("-0.5") and opt.data.underlying_price == Decimal("86977.1")


def test_empty_string_in_delta_is_none_not_an_error() -> None:
    frame = b'{"topic":"tickers.X","type":"delta","ts":1,"cs":2,"data":{"symbol":"X","fundingRate":""}}'
    spaced = b'{"topic": "tickers.X", "type": "delta", "ts": 1, "data": {"symbol": "X", "fundingRate": ""}}'
    for data in (frame, spaced, frame.decode(), spaced.decode()):
        t = decode(data)
        assert isinstance(t, TickerMessage) and t.data.funding_rate is None and t.data.mark_price is UNSET


# ------------------------------------------------------------------------------------ orderbooks


def test_orderbook_levels_are_decimal_pairs() -> None:
    msg = sample("public-orderbook-linear-l50-snapshot-real.json")
    assert msg.type == "snapshot" and len(msg.data.b) == 50 and len(msg.data.a) == 50
    price, size = msg.data.b[0]
    assert isinstance(price, Decimal) and isinstance(size, Decimal)
    delta = sample("public-orderbook-linear-l50-delta-real.json")
    assert delta.data.u == msg.data.u + 1 and delta.cts is not None
    assert any(size == 0 for _, size in delta.data.b)  # "0" deletes a level
    small = sample("public-orderbook-linear-delta-real-small.json")
    assert small.data.a == () and small.data.b == ((Decimal("340.82"), Decimal("3.37")),)
    l1 = sample("public-orderbook-linear-l1-snapshot-real.json")  # `ts` before `type` on the wire
    assert l1.type == "snapshot" and l1.data.seq == 764144453970
    old = sample("public-orderbook-spot-l1-delta-real-2023.json")
    assert old.cts is None and old.data.b == ()


# ------------------------------------------------------------------------- trades, klines, liquidations


def test_public_trades() -> None:
    msg = sample("public-trade-linear-real.json")
    assert len(msg.data) == 9 and len({t.seq for t in msg.data}) == 1
    first = msg.data[0]
    assert (first.side, first.size, first.price, first.tick_direction) == (
        "Sell", Decimal("0.001"), Decimal("69916.80"), "MinusTick",
    )  # fmt: skip
    assert first.rpi is False and first.block_trade is False and first.time == 1774021164272
    opt = sample("public-trade-option-real-2026.json")
    assert opt.data[0].symbol == "BTC-25JUN27-106000-C-USDT" and opt.data[0].mark_iv == Decimal("0.1389")
    assert opt.data[0].tick_direction is None


def test_kline_and_liquidations() -> None:
    k = sample("public-kline-linear-docs.json").data[0]
    assert k.confirm is False and k.open == Decimal("16649.5") and k.interval == "5"
    liq = sample("public-allLiquidation-linear-docs.json").data[0]
    assert (liq.symbol, liq.side, liq.size, liq.price) == (
        "ROSEUSDT",
        "Sell",
        Decimal("20000"),
        Decimal("0.04499"),
    )
    old = sample("public-liquidation-deprecated-docs.json")
    assert old.topic == "liquidation.BTCUSDT" and len(old.data) == 1
    assert (old.data[0].time, old.data[0].price) == (1703485237953, Decimal("43511.70"))


# ------------------------------------------------------------------------------------- private


def test_positions() -> None:
    flat = sample("private-position-closed-docs.json").data[0]
    assert (flat.side, flat.size, flat.position_idx, flat.seq) == ("", Decimal(0), 2, 8327597863)
    assert flat.updated_time == 1697682317038 and flat.created_time == 1694402496913
    assert flat.bust_price is None and flat.liq_price == Decimal(0)
    live = sample("private-position-linear-real-2025.json").data[0]
    assert live.liq_price is None  # "" when out of range
    assert (live.side, live.size, live.leverage) == ("Buy", Decimal("4"), Decimal("10"))
    assert live.session_avg_price is None and live.mmr_sys_updated_time is None
    usdc = sample("private-position-usdc-perp-real-2026.json").data[0]
    assert usdc.break_even_price == Decimal("66606.58008008") and usdc.session_avg_price == Decimal("66473.5")
    assert usdc.position_im_by_mp == Decimal("6.70702815")


def test_empty_leverage_and_none_side_are_accepted() -> None:
    frame = {
        "id": "x", "topic": "position.linear", "creationTime": 1,
        "data": [{"symbol": "BTCUSDT", "side": "None", "size": "0", "leverage": "", "updatedTime": ""}],
    }  # fmt: skip
    row = decode(json.dumps(frame)).data[0]
    assert row.side == "None" and row.leverage is None and row.updated_time == 0


def test_orders() -> None:
    filled = sample("private-order-linear-filled-real-2025-10.json").data[0]
    assert filled.cum_fee_detail == {"USDT": Decimal("0.0256322")} and filled.order_status == "Filled"
    assert filled.take_profit is None and filled.created_time == 1759432560940
    new = sample("private-order-linear-new-real-2025.json").data[0]
    assert new.avg_price is None and new.qty == Decimal("10")
    opt = sample("private-order-option-docs.json").data[0]
    assert opt.rpi_matched_qty == Decimal(0) and opt.leaves_qty is None


def test_executions() -> None:
    msg = sample("private-execution-linear-real-2025.json")
    assert len(msg.data) == 2 and msg.data[0].seq == msg.data[1].seq
    assert msg.data[1].exec_qty == Decimal(9) and msg.data[0].exec_time == 1737725902941
    fee = sample("private-execution-linear-docs.json").data[0].extra_fees[0]
    assert (fee.fee_type, fee.fee) == ("GST", Decimal("0.006403779"))
    spot = sample("private-execution-spot-real-2023.json").data[0]
    assert spot.closed_size is None and spot.mark_price is None


def test_fast_execution_has_no_id() -> None:
    for name in ("private-execution-fast-docs.json", "private-execution-fast-real-2026.json"):
        msg = sample(name)
        assert msg.id is None and msg.topic == "execution.fast"
    row = msg.data[0]
    assert row.order_link_id == "" and row.exec_time == 1774779351198 and row.seq == 37449201146
    linear = decode(
        b'{"topic":"execution.fast.linear","creationTime":1,"data":[{"symbol":"A","execId":"e","orderId":"o",'
        b'"side":"Buy","execPrice":"1","execQty":"2"}]}'
    )
    assert isinstance(linear, FastExecutionMessage)


def test_wallet_and_greeks() -> None:
    w = sample("private-wallet-real-2026.json").data[0]
    assert w.account_type == "UNIFIED" and w.total_perp_upl == Decimal("-36.34620293")
    assert w.account_im_rate_by_mp == Decimal("0.3521") and w.account_ltv == Decimal("0.0011")
    coin = w.coins[0]
    assert (
        coin.coin == "USDC"
        and coin.available_to_withdraw is None
        and coin.total_position_im == Decimal("6.70702815")
    )
    g = sample("private-greeks-docs.json").data[0]
    assert g.base_coin == "ETH" and g.total_gamma == Decimal("-0.00000001")


def test_other_topics_keep_raw_data() -> None:
    msg = decode(b'{"topic":"dcp.future","creationTime":5,"data":[{"dcpStatus":"ON"}]}')
    assert isinstance(msg, OtherTopicMessage) and msg.creation_time == 5
    assert json.loads(bytes(msg.data)) == [{"dcpStatus": "ON"}]
    rpi = decode(b'{"topic":"orderbook.rpi.BTCUSDT","type":"snapshot","ts":1,"data":{"b":[["1","2","3"]]}}')
    assert isinstance(rpi, OtherTopicMessage) and rpi.ts == 1
    status = decode(b'{"topic":"system.status","ts":9,"data":[]}')
    assert isinstance(status, OtherTopicMessage) and status.type is None


# -------------------------------------------------------------------------------------- control


def test_pongs_of_every_endpoint() -> None:
    assert sample("pong-public-spot.json") == Pong(
        req_id=None, conn_id="0970e817-426e-429a-a679-ff7f55e0b16a"
    )
    assert sample("pong-public-linear-real.json").req_id == "ping-pp"
    assert sample("pong-public-option-spread.json") == Pong(server_ms=1672916271846)
    private = sample("pong-private-no-req-id-real-2023.json")
    assert private.req_id is None and private.server_ms == 1699766561376
    assert sample("pong-trade.json").server_ms == 1711002002529


def test_auth_replies_decided_by_success() -> None:
    ok = sample("auth-success-real-2025.json")
    assert ok.success is True and ok.req_id == "637267887005765"
    bad = sample("auth-failure-params-error.json")
    assert bad.success is False and bad.ret_msg == "Params Error"


def test_subscribe_replies() -> None:
    spot = sample("subscribe-success-public-spot.json")
    assert spot.success and spot.op == "subscribe" and spot.ret_msg == "subscribe"
    opt = sample("subscribe-success-public-option-real-2026.json")
    assert opt.op == "subscribe" and opt.success and opt.fail_topics == () and opt.req_id is None
    assert opt.success_topics == (
        "kline.1.BTC-25JUN27-106000-P-USDT", "orderbook.1.BTC-25JUN27-106000-P-USDT",
        "tickers.BTC-25JUN27-106000-P-USDT",
    )  # fmt: skip
    size = sample("subscribe-failure-args-size-spot.json")
    assert not size.success and size.ret_msg == "args size >10"  # `\u003e` on the wire
    assert b"\\u003e" in (SAMPLES / "subscribe-failure-args-size-spot.json").read_bytes()
    unknown = sample("subscribe-failure-unknown-topic-linear.json")
    assert unknown.ret_msg == "error:handler not found,topic:orderbook.50.NOPEUSDT" and not unknown.success
    assert sample("unsubscribe-success-public.json").op == "unsubscribe"


def test_other_op_and_trade_replies() -> None:
    op = sample("private-order-create-on-private-stream-params-error.json")
    assert op == OpReply(op="order.create", success=False, ret_msg="Params Error", conn_id=op.conn_id)
    assert decode(b'{"success":false,"ret_msg":"error:invalid op","op":"nope"}').op == "nope"
    trade = sample("trade-order-create-success.json")
    assert trade.success and trade.ret_code == 0 and trade.req_id == "test-005"
    assert json.loads(bytes(trade.data))["orderId"] == "a4c1718e-fe53-4659-a118-1f6ecce04ad9"
    assert trade.header["X-Bapi-Limit"] == "10"
    repeat = sample("trade-auth-failure-repeat-auth.json")
    assert not repeat.success and repeat.ret_code == 20001 and repeat.op == "auth"
    on_trade = sample("subscribe-failure-on-trade-endpoint.json")
    assert on_trade.ret_code == 10404 and on_trade.op == "subscribe"


# -------------------------------------------------------------------------------------- encoders

OURS = {
    "request-auth.json", "request-ping.json", "request-subscribe.json", "request-unsubscribe.json",
    "request-subscribe-position.json", "request-subscribe-dcp.json", "request-trade-auth.json",
    "request-trade-ping.json",
}  # fmt: skip
NOT_OURS = {
    "request-trade-order-create.json",
    "request-trade-order-create-batch.json",
}  # Trade WS: out of scope


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _encode_like(req: dict[str, Any]) -> str:
    op, req_id, args = req["op"], req.get("req_id"), req.get("args", [])
    if op == "auth":
        return encode_auth(args[0], args[1], args[2], req_id)
    if op == "subscribe":
        return encode_subscribe(args, req_id)
    if op == "unsubscribe":
        return encode_unsubscribe(args, req_id)
    assert op == "ping"
    return encode_ping(req_id)


def test_every_request_sample_is_accounted_for() -> None:
    assert {p.name for p in SAMPLES.glob("request-*.json")} == OURS | NOT_OURS


@pytest.mark.parametrize("name", sorted(OURS))
def test_encoders_match_request_samples(name: str) -> None:
    req = json.loads((SAMPLES / name).read_bytes())
    ours = json.loads(_encode_like(req))
    assert _shape(ours) == _shape(req)  # same keys, same JSON types
    assert ours == req  # and, fed the sample's values, the same values


def test_encoders_shapes_with_other_values() -> None:
    auth = json.loads(encode_auth("key", 1662350400000, "ab" * 32, "7"))
    assert auth == {"op": "auth", "req_id": "7", "args": ["key", 1662350400000, "ab" * 32]}
    assert isinstance(auth["args"][1], int)  # expires is a JSON number (BYBIT_V5.md §2)
    sub = encode_subscribe(iter(["tickers.A", "tickers.B"]), "s1")
    assert json.loads(sub) == {"op": "subscribe", "req_id": "s1", "args": ["tickers.A", "tickers.B"]}
    assert json.loads(encode_unsubscribe([], "u"))["args"] == []
    assert encode_ping("p") == '{"op":"ping","req_id":"p"}' and encode_ping() == '{"op":"ping"}'


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"garbage", "not JSON: "),
        (b"", "not JSON: "),
        (b"\xff\xfe{", "not JSON: "),
        (b'{"op":"\xff"}', "not JSON: invalid UTF-8"),
        (b"[1,2]", "frame: "),
        (b"42", "frame: "),
        (b'{"foo":1}', "unrecognised frame"),
        (b'{"topic":5}', "frame: topic: "),
        (
            b'{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":{"symbol":"BTCUSDT","markPrice":"x"}}',
            "tickers.BTCUSDT: data.markPrice: expected a decimal string",
        ),
        (
            b'{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":[]}',
            "tickers.BTCUSDT: data: ",
        ),
        (
            b'{"topic":"orderbook.1.A","type":"delta","ts":1,"data":{"s":"A","b":[["NaN","1"]],"a":[],"u":1}}',
            "orderbook.1.A: data.b[0][0]: expected a finite decimal",
        ),
        (
            b'{"topic":"orderbook.1.A","type":"delta","ts":1,"data":{"s":"A","b":[],"a":[["1e999999","1"]],"u":1}}',
            "orderbook.1.A: data.a[0][0]: expected a finite decimal",
        ),
        (
            b'{"topic":"tickers.A","type":"delta","ts":1,"data":{"symbol":"A","markPrice":"-Infinity"}}',
            "tickers.A: data.markPrice: expected a finite decimal",
        ),
        (
            b'{"topic":"position","creationTime":1,"data":[{"symbol":"A","size":"sNaN"}]}',
            "position: data[0].size: expected a finite decimal",
        ),
        (
            b'{"topic":"position","creationTime":1,"data":[{"symbol":"A","size":"1","liqPrice":"NaN"}]}',
            "position: data[0].liqPrice: expected a finite decimal",
        ),
        (
            b'{"topic":"publicTrade.A","ts":1,"data":[{"T":1,"s":"A","S":"Buy","v":"1","p":"\\u004eaN"}]}',
            "publicTrade.A: data[0].p: expected a finite decimal",
        ),
        (
            '{"topic":"orderbook.1.A","ts":1,"type":"delta","data":{"s":"A","b":[],"a":[["1e\u0661\u0660\u0660\u0660\u0660","1"]],"u":1}}'.encode(),
            "orderbook.1.A: data.a[0][0]: expected a finite decimal",
        ),
        (b'{"topic":"wallet","creationTime":1}', "wallet: "),
        (b'{"type":"COMMAND_RESP","success":true,"data":{"successTopics":"x"}}', "COMMAND_RESP: data: "),
        (b'{"reqId":"1","op":"order.create"}', "trade reply: reqId without retCode"),
        (b"[" * 100_000, "frame: "),
        (b'{"a":' * 100_000, "not JSON: "),
        (b'{"topic":"tickers.A","data":' + b"[" * 100_000, "not JSON: "),
    ],
    ids=lambda v: v[:40].decode("latin-1") if isinstance(v, bytes) else None,
)
def test_errors_name_what_was_wrong(data: bytes, text: str) -> None:
    # `text` is only what our code writes (where, which field, and our own verdicts); what msgspec adds
    # after it is its wording, which changes between releases (0.23 did), so it is not asserted.
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert str(info.value).startswith(text), str(info.value)


def test_escaped_or_spaced_topics_take_the_envelope_path() -> None:
    escaped = decode(
        b'{"topic":"tickers.\\u0041","type":"delta","ts":1,"data":{"symbol":"A","markPrice":"2"}}'
    )
    assert isinstance(escaped, TickerMessage) and escaped.topic == "tickers.A"
    spaced = decode('{"topic" : "orderbook.1.A", "type": "delta", "ts": 1, "data": {"s": "A", "u": 3}}')
    assert isinstance(spaced, OrderbookMessage) and spaced.data.u == 3 and spaced.data.b == ()


def test_the_topic_cache_is_bounded() -> None:
    for i in range(5000):
        msg = decode(f'{{"topic":"insurance.C{i}","type":"delta","ts":{i},"data":[]}}')
        assert isinstance(msg, OtherTopicMessage) and msg.ts == i
    assert len(_codec._BY_TOPIC) <= _codec._BY_TOPIC_MAX


def test_a_nested_topic_key_does_not_misroute() -> None:
    msg = decode(b'{"op":"pong","args":[{"topic":"tickers.X"}],"conn_id":"c"}')
    assert msg == Pong(conn_id="c")
    inner_first = b'{"data":{"topic":"order"},"topic":"tickers.A","type":"delta","ts":1}'
    with pytest.raises(DecodeError, match=r"^tickers\.A: data"):
        decode(inner_first)


# ------------------------------------------------------------------------------------------ fuzz

FRAMES = [p.read_bytes() for p in INBOUND]


def _check(data: bytes | str) -> None:
    try:
        msg = decode(data)
    except DecodeError:
        return
    assert isinstance(msg, MESSAGE_TYPES)
    for dec in _decimals(msg):
        assert dec.is_finite() and abs(dec.adjusted()) <= 1000


def _decimals(obj: Any) -> list[Decimal]:
    if isinstance(obj, Decimal):
        return [obj]
    if isinstance(obj, msgspec.Struct):
        return [d for name in obj.__struct_fields__ for d in _decimals(getattr(obj, name))]
    if isinstance(obj, tuple | list):
        return [d for item in obj for d in _decimals(item)]
    if isinstance(obj, dict):
        return [d for item in obj.values() for d in _decimals(item)]
    return []


@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@given(st.text(max_size=200))
def test_fuzz_random_text(data: str) -> None:
    _check(data)


@given(
    st.sampled_from(FRAMES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("flip insert delete")),
             max_size=6),
    st.integers(0, 10_000) | st.none(),
)  # fmt: skip
def test_fuzz_mutated_sample_bytes(frame: bytes, edits: list[tuple[int, int, str]], cut: int | None) -> None:
    data = bytearray(frame)
    for pos, byte, kind in edits:
        i = pos % (len(data) + 1)
        if kind == "insert":
            data.insert(i, byte)
        elif data and kind == "delete":
            del data[i % len(data)]
        elif data:
            data[i % len(data)] = byte
    _check(bytes(data[:cut]) if cut is not None else bytes(data))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "0", "1.5", "-2", "NaN", "Infinity", "1e999999", "abc", "0x10", " 1 ", "1_0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@given(st.sampled_from(FRAMES), st.data(), JSON_VALUES)
def test_fuzz_one_value_replaced(frame: bytes, data: st.DataObject, value: Any) -> None:
    doc = json.loads(frame)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    _check(json.dumps(doc))
    _check(json.dumps(doc).encode())


def test_ticker_data_is_one_flat_struct() -> None:
    # The data plane merges deltas with msgspec.structs.replace: no nested Structs inside.
    for f in msgspec.structs.fields(TickerData):
        assert "Struct" not in str(f.type)
