"""Every number is checked where it is decoded ("Never frozen", item 4): finite, of sane magnitude, the right
sign for its field, a decimal string and not a bare JSON number; a position's side agrees with its size and
positionIdx. A frame that breaks a rule is a DecodeError in our words (the link makes it a ProtocolProblem,
never applied); everything else keeps decoding, every real sample included. Ends with the whole core: a
poisoned mark changes nothing and the next good one applies.
"""

from __future__ import annotations

import decimal
import json
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bybit_hybrid_core import Config, Credentials, Endpoints, PositionUpdate, ProtocolProblem
from bybit_hybrid_core._codec import Message, TickerMessage, decode
from bybit_hybrid_core._codec import frames as _frames
from bybit_hybrid_core._codec import private as _codec_private
from bybit_hybrid_core._codec import public as _codec_public
from bybit_hybrid_core._codec import vetting as _vetting
from bybit_hybrid_core._codec.fields import RULES, Dec, check_values, explain
from bybit_hybrid_core._errors import DecodeError
from bybit_hybrid_core.testing import DEFAULT_START_MS, Simulation, Venue
from repo_paths import SAMPLES

MESSAGE_TYPES = typing.get_args(Message)
TOPIC_SAMPLES = sorted(
    p for p in SAMPLES.glob("*.json") if not p.name.startswith("request-") and '"topic"' in p.read_text()
)


def ticker(data: str, kind: str = "delta") -> bytes:
    head = '{"topic":"tickers.BTCUSDT","type":"' + kind + '","data":{"symbol":"BTCUSDT",'
    return (head + data + '},"cs":9,"ts":1}').encode()


def snapshot(**fields: str) -> bytes:
    """The real linear snapshot with `fields` replaced by raw JSON fragments, compact as on the wire."""
    doc = json.loads((SAMPLES / "public-tickers-linear-snapshot-real.json").read_bytes())
    marks = {}
    for i, (key, fragment) in enumerate(fields.items()):
        doc["data"][key] = f"@{i}@"
        marks[f'"@{i}@"'] = fragment
    text = json.dumps(doc, separators=(",", ":"))
    for mark, fragment in marks.items():
        text = text.replace(mark, fragment)
    return text.encode()


def book(b: str = "[]", a: str = "[]") -> bytes:
    head = '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":'
    return (head + b + ',"a":' + a + ',"u":5,"seq":7},"cts":1}').encode()


def trade(row: str) -> bytes:
    head = '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy",'
    return (head + row + ',"i":"8c931d9a-b703-5c34-9aeb-860867cf1f66","BT":false,"seq":3}]}').encode()


def private(topic: str, row: str) -> bytes:
    return ('{"id":"x","topic":"' + topic + '","creationTime":1,"data":[{' + row + "}]}").encode()


def position(row: str) -> bytes:
    return private("position", '"symbol":"BTCUSDT","category":"linear",' + row)


def order(row: str) -> bytes:
    return private("order", '"symbol":"A","orderId":"o","side":"Buy","orderStatus":"New",' + row)


def execution(row: str, topic: str = "execution") -> bytes:
    return private(topic, '"symbol":"A","execId":"e","orderId":"o","side":"Buy",' + row)


def wallet(row: str) -> bytes:
    return private("wallet", '"accountType":"UNIFIED",' + row)


REFUSED = [
    # tickers: the user's report, then every rule, on a delta and on a real snapshot
    (
        ticker('"markPrice":1e300'),
        "tickers.BTCUSDT: data.markPrice: expected a decimal string, not a bare number",
    ),
    (
        ticker('"markPrice":1e999'),
        "tickers.BTCUSDT: data.markPrice: expected a decimal string, not a bare number",
    ),
    (
        ticker('"markPrice":5'),
        "tickers.BTCUSDT: data.markPrice: expected a decimal string, not a bare number",
    ),
    (
        ticker('"markPrice":-5'),
        "tickers.BTCUSDT: data.markPrice: expected a decimal string, not a bare number",
    ),
    (ticker('"markPrice":"-5"'), "tickers.BTCUSDT: data.markPrice: expected a positive price"),
    (ticker('"markPrice":" -5"'), "tickers.BTCUSDT: data.markPrice: expected a positive price"),
    (ticker('"markPrice":"0"'), "tickers.BTCUSDT: data.markPrice: expected a positive price"),
    (ticker('"markPrice":"0E-8"'), "tickers.BTCUSDT: data.markPrice: expected a positive price"),
    (
        ticker('"markPrice":"1e300"'),
        "tickers.BTCUSDT: data.markPrice: expected a finite decimal of sane magnitude",
    ),
    (ticker('"markPrice":"NaN"'), "tickers.BTCUSDT: data.markPrice: expected a finite decimal"),
    (
        ticker('"markPrice":"1000000000000000000"'),
        "tickers.BTCUSDT: data.markPrice: expected a finite decimal",
    ),
    (
        ticker('"markPrice":"1.0000000000000000001"'),
        "tickers.BTCUSDT: data.markPrice: expected a finite decimal",
    ),
    (ticker('"lastPrice":"-1"'), "tickers.BTCUSDT: data.lastPrice: expected a price >= 0"),
    (ticker('"bid1Size":"-0.5"'), "tickers.BTCUSDT: data.bid1Size: expected a size >= 0"),
    (ticker('"turnover24h":"-3"'), "tickers.BTCUSDT: data.turnover24h: expected an amount >= 0"),
    (
        ticker('"fundingRate":0.0001'),
        "tickers.BTCUSDT: data.fundingRate: expected a decimal string, not a bare",
    ),
    (
        ticker('"price24hPcnt":"-0.01","indexPrice":"-2"'),
        "tickers.BTCUSDT: data.indexPrice: expected a price >= 0",
    ),
    (
        snapshot(markPrice="1e300"),
        "tickers.BTCUSDT: data.markPrice: expected a decimal string, not a bare number",
    ),
    (snapshot(markPrice='"-5"'), "tickers.BTCUSDT: data.markPrice: expected a positive price"),
    (
        snapshot(ask1Price="63561"),
        "tickers.BTCUSDT: data.ask1Price: expected a decimal string, not a bare number",
    ),
    (snapshot(volume24h='"-1"'), "tickers.BTCUSDT: data.volume24h: expected a size >= 0"),
    # orderbook levels: (price, size)
    (book(b='[["1",2]]'), "orderbook.50.BTCUSDT: data.b[0][1]: expected a decimal string, not a bare number"),
    (
        book(a='[[1e300,"2"]]'),
        "orderbook.50.BTCUSDT: data.a[0][0]: expected a decimal string, not a bare number",
    ),
    (book(b='[["1","-2"]]'), "orderbook.50.BTCUSDT: data.b[0][1]: expected a size >= 0"),
    (book(a='[["3","1"],["-1","2"]]'), "orderbook.50.BTCUSDT: data.a[1][0]: expected a price >= 0"),
    (
        book(a='[["1e20","1"]]'),
        "orderbook.50.BTCUSDT: data.a[0][0]: expected a finite decimal of sane magnitude",
    ),
    # publicTrade
    (trade('"v":"-1","p":"5"'), "publicTrade.BTCUSDT: data[0].v: expected a size >= 0"),
    (trade('"v":"1","p":5'), "publicTrade.BTCUSDT: data[0].p: expected a decimal string, not a bare number"),
    (
        trade('"v":"1","p":"1e300"'),
        "publicTrade.BTCUSDT: data[0].p: expected a finite decimal of sane magnitude",
    ),
    (trade('"v":"1","p":"5","mP":"-1"'), "publicTrade.BTCUSDT: data[0].mP: expected a price >= 0"),
    # position: signs, bare numbers, side against size and positionIdx (BYBIT_V5.md §6)
    (position('"side":"Buy","size":"-5"'), "position: data[0].size: expected a size >= 0"),
    (
        position('"side":"Buy","size":5'),
        "position: data[0].size: expected a decimal string, not a bare number",
    ),
    (
        position('"side":"Buy","size":"1","markPrice":1e999'),  # out of a float's range: worded the same
        "position: data[0].markPrice: expected a decimal string, not a bare number",
    ),
    (
        position('"side":"Buy","size":"1","markPrice":7'),
        "position: data[0].markPrice: expected a decimal string",
    ),
    (
        position('"side":"Buy","size":"1","markPrice":"-5"'),
        "position: data[0].markPrice: expected a price >= 0",
    ),
    (
        position('"side":"Buy","size":"1","markPrice":"0"'),
        "position: data[0].markPrice: expected a positive price",
    ),
    (
        position('"side":"Buy","size":"1","entryPrice":"-1"'),
        "position: data[0].entryPrice: expected a price >= 0",
    ),
    (position('"side":"Long","size":"0"'), 'position: data[0].side: expected Buy, Sell, "" or None'),
    (
        position('"side":"","size":"0.5"'),
        "position: data[0].side: an open position (size 0.5) needs side Buy",
    ),
    (
        position('"side":"None","size":"0.5"'),
        "position: data[0].side: an open position (size 0.5) needs side Buy",
    ),
    (
        position('"side":"Sell","size":"1","positionIdx":1'),
        "position: data[0].side: positionIdx 1 is the hedge",
    ),
    (
        position('"side":"Buy","size":"1","positionIdx":2'),
        "position: data[0].side: positionIdx 2 is the hedge",
    ),
    (
        position('"side":"Buy","size":"1","positionIdx":3'),
        "position: data[0].positionIdx: expected 0 (one-way)",
    ),
    (
        position('"side":"Buy","size":"1e30"'),
        "position: data[0].size: expected a finite decimal of sane magnitude",
    ),
    # order, execution, execution.fast
    (order('"price":"-1"'), "order: data[0].price: expected a price >= 0"),
    (order('"qty":3'), "order: data[0].qty: expected a decimal string, not a bare number"),
    (
        order('"cumFeeDetail":{"USDT":1}'),
        "order: data[0].cumFeeDetail.USDT: expected a decimal string, not a",
    ),
    (execution('"execPrice":"-1","execQty":"1"'), "execution: data[0].execPrice: expected a price >= 0"),
    (
        execution('"execPrice":"1","execQty":2'),
        "execution: data[0].execQty: expected a decimal string, not a",
    ),
    (
        execution('"execPrice":"1","execQty":"-2"', "execution.fast"),
        "execution.fast: data[0].execQty: expected",
    ),
    # wallet: no sign rules (real wallets go negative), the others hold
    (wallet('"totalEquity":5'), "wallet: data[0].totalEquity: expected a decimal string, not a bare number"),
    (wallet('"coin":[{"coin":"USDT","equity":"1e30"}]'), "wallet: data[0].coin[0].equity: expected a finite"),
]


@pytest.mark.parametrize(
    ("frame", "text"), REFUSED, ids=lambda v: v[:70].decode() if isinstance(v, bytes) else ""
)
def test_a_broken_number_is_a_decode_error_in_our_words(frame: bytes, text: str) -> None:
    for data in (frame, frame.decode()):
        with pytest.raises(DecodeError) as info:
            decode(data)
        assert str(info.value).startswith(text), str(info.value)


ACCEPTED = [
    ticker('"price24hPcnt":"-0.158315","fundingRate":"-0.005","basis":"-4730.84"'),  # signed fields
    ticker('"markPrice":"63561.6","nextFundingTime":1786665600000'),  # an int field may be a number
    ticker('"markPrice":"1e5"'),  # an exponent of sane magnitude
    ticker('"bid1Size":"0","predictedDeliveryPrice":"0.00","fundingRate":""'),  # "0" and "" are real
    ticker('"markPrice":"999999999999999999.9"'),  # just below the bound, 19 characters: walked, accepted
    b'{"topic":"tickers.BTC-25JUN27-106000-P-USDT","ts":1,"type":"snapshot","id":"tickers.BTC-25JUN27-1",'
    b'"data":{"symbol":"BTC-25JUN27-106000-P-USDT","markPrice":"24465","delta":"-0.5","theta":"-40"}}',
    book(b='[["63561.6","0"]]', a="[]"),  # size 0 deletes a level
    trade('"v":"0.1","p":"240","mP":"238.78","mIv":"-0.01"'),
    position('"side":"","size":"0","positionIdx":2,"markPrice":"0","liqPrice":"0","takeProfit":"0"'),
    position('"side":"None","size":"0","leverage":"","unrealisedPnl":"-3"'),
    position('"side":"Sell","size":"1","positionIdx":2,"cumRealisedPnl":"-25.06579337","seq":-1'),
    order('"price":"0","triggerPrice":"0.00","closedPnl":"-1","cumExecFee":"-0.01"'),
    execution('"execPrice":"1","execQty":"2","execFee":"-0.1","execPnl":"-3","closedSize":"0"'),
    wallet('"totalPerpUPL":"-36.3","coin":[{"coin":"USDC","equity":"-0.0679535","walletBalance":"-0.06"}]'),
]


@pytest.mark.parametrize("frame", ACCEPTED, ids=lambda v: v[:70].decode())
def test_everything_else_still_decodes(frame: bytes) -> None:
    msg = decode(frame)
    assert isinstance(msg, MESSAGE_TYPES) and decode(frame.decode()) == msg
    assert violations(msg, json.loads(frame, parse_float=Decimal)) == []


@pytest.mark.parametrize("path", TOPIC_SAMPLES, ids=lambda p: p.name)
def test_every_real_topic_sample_obeys_the_rules(path: Path) -> None:
    raw = path.read_bytes()
    for data in (raw, json.dumps(json.loads(raw), separators=(",", ":")).encode()):  # walked, then fast
        msg = decode(data)
        if msg.topic.startswith("liquidation."):
            continue  # converted to allLiquidation rows: its raw shape is not the decoded one
        assert violations(msg, json.loads(data, parse_float=Decimal)) == []


# --------------------------------------------------------------------------- the rules as declared

STRUCTS = [
    cls
    for module in (_codec_public, _codec_private)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct) and cls.__module__ == module.__name__
]


def _decimal_fields(cls: type) -> set[str]:
    out = set()
    for f in msgspec.structs.fields(cls):
        text = repr(f.type)
        if (
            ("Decimal" in text and "Level" not in text)
            or "_DecimalMarker" in text
            or "_DecimalStrMarker" in text
        ):
            out.add(f.name)
    return out | ({"b", "a"} if cls.__name__ == "OrderbookData" else set())


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_every_decimal_field_is_declared_exactly_once(cls: type) -> None:
    decimals = _decimal_fields(cls)
    if not decimals:
        assert cls not in RULES or not (RULES[cls].nonneg or RULES[cls].signed)
        return
    rules = RULES[cls]
    assert set(rules.nonneg) | rules.signed == decimals, "declare new Decimal fields in register()"
    assert not set(rules.nonneg) & rules.signed
    assert rules.positive <= set(rules.nonneg)


def test_a_good_frame_is_decoded_once_and_never_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 14: one typed decode, then one pass over its Decimals. The untyped decode and the walk are for
    # refusals (to name them) and for what the generated checker leaves open; real frames reach neither.
    calls: list[str] = []
    untyped = _frames._UNTYPED

    class Counting:
        def decode(self, data: bytes | str) -> Any:
            calls.append("untyped decode")
            return untyped.decode(data)

    def walk(obj: msgspec.Struct, raw: Any = None, path: str = "") -> str | None:
        calls.append(f"walk {type(obj).__name__}")
        return check_values(obj)

    monkeypatch.setattr(_frames, "_UNTYPED", Counting())
    monkeypatch.setattr(_vetting, "check_values", walk)
    for path in TOPIC_SAMPLES:
        frame = json.dumps(json.loads(path.read_bytes()), separators=(",", ":")).encode()
        decode(frame)
        assert calls == [], (path.name, calls)
    with pytest.raises(DecodeError):
        decode(ticker('"markPrice":"-5"'))
    assert calls == ["walk TickerMessage"]
    with pytest.raises(DecodeError):
        decode(book(b='[["1",2]]'))
    assert calls[1:] == ["untyped decode"]


@pytest.mark.parametrize(
    "frame",
    [
        book(b='[["600000000000000000","1"]]', a='[["600000000000000000","1"]]'),  # each < 1e18, the sum not
        ticker('"markPrice":"999999999999999999.9","lastPrice":"999999999999999999.9"'),
        ticker('"basis":"-999999999999999999","fundingRate":"999999999999999999"'),
    ],
    ids=["book", "ticker", "signed"],
)
def test_what_the_checker_only_suspects_is_walked_and_accepted(frame: bytes) -> None:
    msg = decode(frame)
    assert violations(msg, json.loads(frame, parse_float=Decimal)) == []


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        # more than 18 places, even as trailing zeros or on a zero: the running sum's exponent shows them
        (ticker('"lastPrice":"1.0000000000000000000"'), "tickers.BTCUSDT: data.lastPrice: expected a finite"),
        (ticker('"bid1Size":"0E-30"'), "tickers.BTCUSDT: data.bid1Size: expected a finite"),
        (ticker('"bid1Size":"0.0000000000000000000"'), "tickers.BTCUSDT: data.bid1Size: expected a finite"),
        (book(a='[["5","1"],["6","0E-19"]]'), "orderbook.50.BTCUSDT: data.a[1][1]: expected a finite"),
        (ticker('"fundingRate":"-0.00000000000000000001"'), "tickers.BTCUSDT: data.fundingRate: expected"),
        (ticker('"basis":"-Infinity"'), "tickers.BTCUSDT: data.basis: expected a finite"),
        (book(b='[["Infinity","1"]]'), "orderbook.50.BTCUSDT: data.b[0][0]: expected a finite"),
        (book(b='[["1","sNaN"]]'), "orderbook.50.BTCUSDT: data.b[0][1]: expected a finite"),
        (trade('"v":"1","p":"NaN"'), "publicTrade.BTCUSDT: data[0].p: expected a finite"),
        (trade('"v":true,"p":"1"'), "publicTrade.BTCUSDT: data[0].v: expected a decimal string, got"),
        (ticker('"markPrice":[1]'), "tickers.BTCUSDT: data.markPrice: expected a decimal string, got"),
        (execution('"execPrice":"1","execQty":"1","extraFees":[{"fee":5}]'), "execution: data[0].extraFees"),
    ],
    ids=lambda v: v[:60].decode() if isinstance(v, bytes) else "",
)
def test_more_broken_numbers_are_refused(frame: bytes, text: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(frame)
    assert str(info.value).startswith(text), str(info.value)


@pytest.mark.parametrize("setting", ["low precision", "no traps", "every trap"])
def test_the_verdicts_do_not_depend_on_the_threads_decimal_context(setting: str) -> None:
    # The hot checks add in the thread's context (`vetting._exact`): a user's context may round, trap, or
    # let NaN compare quietly; none of that may change what is accepted and what is refused.
    good = [path.read_bytes() for path in TOPIC_SAMPLES]
    good.append(book(b='[["63561.6","900000000000"],["63561.5","0.000000000000000001"]]'))
    bad = [frame for frame, _ in REFUSED]
    bad += [book(b='[["1.5","0.0000000000000000001"]]'), trade('"v":"1.5","p":"0.0000000000000000001"')]
    expected = [str(_refused(frame)) for frame in bad]
    with decimal.localcontext() as ctx:
        if setting == "low precision":
            ctx.prec = 6
        for signal in (decimal.InvalidOperation, decimal.Inexact, decimal.Rounded, decimal.Overflow):
            ctx.traps[signal] = setting == "every trap"
        for frame in good:
            decode(frame)
        assert [str(_refused(frame)) for frame in bad] == expected


def _refused(frame: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(frame)
    return info.value


class _Money(msgspec.Struct):
    amount: Dec


@pytest.mark.parametrize("number", [b"5", b"-5", b"0", b"1.5", b"-0.5", b"1e300"])
def test_dec_refuses_a_bare_number_in_any_strict_decoder_in_our_words(number: bytes) -> None:
    # The REST snapshot decodes PositionRow with its own decoder and words errors with `explain`.
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(b'{"amount":' + number + b"}", type=_Money)
    assert explain("answer", info.value) == "answer: amount: expected a decimal string, not a bare number"
    quoted = msgspec.json.decode(b'{"amount":"' + number + b'"}', type=_Money)  # a string still decodes
    assert quoted.amount == Decimal(number.decode())


# ------------------------------------------------------------------------------ hypothesis: any frame

NASTY = st.sampled_from(
    ["1e300", "1e999", "-5", "5", "0.5", '"-5"', '"0"', '"-0"', '"NaN"', '"sNaN"', '"-Infinity"', '"1e300"',
     '"1E-30"', '"1e5"', '" -5"', '"1000000000000000000"', '"0.0000000000000000001"', '"-0.0001"', '""',
     '"1_0"', '"+5"', "null", "true", '"Buy"', '"Sell"', '"None"', '"x"', "2", "1"]
)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=400)
@given(st.sampled_from(TOPIC_SAMPLES), st.data(), st.lists(NASTY, min_size=1, max_size=3))
def test_any_decoded_message_obeys_every_rule_or_is_refused(
    path: Path, data: st.DataObject, values: list[str]
) -> None:
    doc = json.loads(path.read_bytes())
    marks = {}
    for n, value in enumerate(values):
        where = data.draw(st.sampled_from([p for p in _paths(doc) if len(p) > 1 and p[0] == "data"]))
        target = doc
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = f"@{n}@"
        marks[f'"@{n}@"'] = value
    text = json.dumps(doc, separators=(",", ":"))
    for mark, value in marks.items():
        text = text.replace(mark, value)
    try:
        msg = decode(text.encode())
    except DecodeError:
        return
    if msg.topic.startswith("liquidation."):
        return
    assert violations(msg, json.loads(text, parse_float=Decimal)) == [], text


def violations(obj: Any, raw: Any, path: str = "") -> list[str]:
    """An oracle written apart from the codec's walk: every Decimal is a string on the wire, finite, |x| <
    1e18 with at most 18 places, and of the sign its declared rule says; an open position's side agrees."""
    out: list[str] = []
    if isinstance(obj, Decimal):
        exponent = obj.as_tuple().exponent
        if not isinstance(raw, str):
            out.append(f"{path}: from a bare number")
        if (
            not obj.is_finite()
            or abs(obj) >= Decimal("1e18")
            or not isinstance(exponent, int)
            or exponent < -18
        ):
            out.append(f"{path}: insane {obj}")
        return out
    if isinstance(obj, msgspec.Struct):
        rules = RULES.get(type(obj))
        for f in msgspec.structs.fields(obj):
            value = getattr(obj, f.name)
            sub = raw.get(f.encode_name) if isinstance(raw, dict) else None
            out += violations(value, sub, f"{path}.{f.encode_name}")
            if rules and f.name in rules.nonneg and value is not msgspec.UNSET and value is not None:
                flat = [value] if isinstance(value, Decimal) else [d for level in value for d in level]
                out += [f"{path}.{f.encode_name}: negative" for d in flat if d < 0]
                if f.name in rules.positive and not value > 0:
                    out.append(f"{path}.{f.encode_name}: not positive")
        if isinstance(obj, _codec_private.PositionRow):
            if obj.side not in ("Buy", "Sell", "", "None") or obj.position_idx not in (0, 1, 2):
                out.append(f"{path}: side {obj.side!r} / positionIdx {obj.position_idx}")
            elif obj.size > 0 and (
                obj.side in ("", "None") or {1: "Buy", 2: "Sell"}.get(obj.position_idx, obj.side) != obj.side
            ):
                out.append(f"{path}: open with side {obj.side!r} at positionIdx {obj.position_idx}")
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            out += violations(
                item, raw[i] if isinstance(raw, list) and i < len(raw) else None, f"{path}[{i}]"
            )
    elif isinstance(obj, dict):
        for key, item in obj.items():
            out += violations(item, raw.get(key) if isinstance(raw, dict) else None, f"{path}.{key}")
    return out


def test_check_values_without_raw_skips_only_the_bare_number_rule() -> None:
    msg = decode(ticker('"markPrice":"5"'))
    assert isinstance(msg, TickerMessage) and check_values(msg) is None
    bad = msgspec.structs.replace(msg.data, mark_price=Decimal("-1"))
    assert check_values(bad, path="data") == "data.markPrice: expected a positive price"


# ------------------------------------------------------------------------------- through the core

CONFIG = Config(
    credentials=Credentials("test-key", "test-secret"), endpoints=Endpoints.custom("ws://fake.bybit")
)
KEY = ("linear", "BTCUSDT", 0)


@pytest.mark.parametrize("value", ["1e300", '"-5"', "1e999", '"0"', '"NaN"', "63000"])
def test_a_poisoned_mark_is_a_problem_and_never_applied(value: str) -> None:
    venue = Venue(3, DEFAULT_START_MS, interval=0.5)
    sim = Simulation(CONFIG, seed=3, venue=venue, publish_interval=0.5)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(3.0)
    sim.settle()
    positions = sim.core.positions()
    good = sim.last_updates()[KEY]
    assert good.mark_price == sim.exchange.mark("BTCUSDT") and good.unrealised_pnl is not None
    first = len(sim.events)
    sim.exchange.poison("linear", "markPrice", value, n=1, topic="tickers.BTCUSDT")
    sim.advance(0.5)  # the next ticker push carries it
    problems = [e for e in sim.events[first:] if isinstance(e, ProtocolProblem)]
    assert [p.detail.split(": expected")[0].split(": a bare")[0] for p in problems] == [
        "tickers.BTCUSDT: data.markPrice"
    ], problems
    updates = [e for e in sim.events[first:] if isinstance(e, PositionUpdate)]
    assert all(u.mark_price == good.mark_price and u.unrealised_pnl == good.unrealised_pnl for u in updates)
    assert sim.core.positions() == positions
    sim.advance(1.0)  # the next good delta applies
    sim.settle()
    last = sim.last_updates()[KEY]
    assert last.mark_price == sim.exchange.mark("BTCUSDT") and last.mark_price is not None
    assert last.mark_price > 0 and abs(last.unrealised_pnl or 0) < Decimal("1e9")
    assert sim.core.positions() == sim.exchange.positions() and sim.problems() == []


def test_a_poisoned_position_size_is_a_problem_and_positions_stay_intact() -> None:
    sim = Simulation(CONFIG, seed=3, venue=Venue(3, DEFAULT_START_MS, interval=0.5), publish_interval=0.5)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(3.0)
    sim.settle()
    positions = sim.core.positions()
    first = len(sim.events)
    sim.exchange.poison("private", "size", '"-5"', topic="position")
    sim.exchange.place_order("BTCUSDT", side="Buy", qty="0.1")
    sim.advance(1.0)
    details = [e.detail for e in sim.events[first:] if isinstance(e, ProtocolProblem)]
    assert "position: data[0].size: expected a size >= 0" in details, details
    assert all(not (isinstance(e, PositionUpdate) and e.size < 0) for e in sim.events[first:])
    assert sim.core.positions()[KEY].size == positions[KEY].size  # the poisoned push was not applied
