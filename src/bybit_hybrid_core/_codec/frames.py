"""The codec: one `decode()` for every inbound Bybit V5 frame, and the encoders for the ops we send.

Theory of operation. Almost every frame is a topic message, so `decode` first looks for the top-level
`"topic":"..."` with two `find`s, picks the typed decoder of that topic's family (built once, at import) and
decodes the whole frame in a single pass. Only when that fails, or the frame has no topic, does it decode a
permissive `Envelope` and classify it in the order of BYBIT_V5.md "Practical consequences" item 1:
topic -> data; retCode/reqId -> trade reply; type COMMAND_RESP -> option subscribe ack; op -> control reply.
The envelope pass also gives errors a correct name when the fast guess was wrong.

Then every number is vetted (`_vet`): finite, sane magnitude, the right sign for its field, and a decimal
string, not a bare JSON number (msgspec decodes both into `Decimal`). The rules live with the Structs
(`register` in _codec_public/_codec_private); market data pays only cheap scans of the raw bytes unless
they say a rule might be broken, private messages are always walked.

Whatever the input, `decode` returns a `Message` or raises `DecodeError`, whose text says what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from .._errors import DecodeError
from .control import (
    AuthReply,
    Envelope,
    OpReply,
    Pong,
    SubscribeReply,
    TradeReply,
    classify_control,
)
from .fields import (
    RULES,
    check_values,
    dec_hook,
    explain,
    looks_suspect,
    market_key,
    market_suspect,
    numbers_suspect,
    wire_key,
)
from .private import (
    ExecutionMessage,
    FastExecutionMessage,
    GreeksMessage,
    OrderMessage,
    PositionMessage,
    WalletMessage,
)
from .public import (
    KlineMessage,
    LiquidationMessage,
    OldLiquidationMessage,
    OrderbookMessage,
    PublicTradeMessage,
    TickerData,
    TickerMessage,
)

__all__ = [
    "PRIVATE_MESSAGES",
    "PUBLIC_MESSAGES",
    "ControlMessage",
    "Message",
    "OtherTopicMessage",
    "TopicMessage",
    "decode",
    "vet_numbers",
]


class OtherTopicMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A topic without a dedicated Struct (dcp, insurance, system.status, orderbook.rpi, ...): raw `data`."""

    topic: str
    type: str | None = None
    ts: int | None = None
    creation_time: int | None = msgspec.field(default=None, name="creationTime")
    data: msgspec.Raw = msgspec.Raw(b"null")


TopicMessage = (
    TickerMessage
    | OrderbookMessage
    | PublicTradeMessage
    | KlineMessage
    | LiquidationMessage
    | PositionMessage
    | OrderMessage
    | ExecutionMessage
    | FastExecutionMessage
    | WalletMessage
    | GreeksMessage
    | OtherTopicMessage
)
ControlMessage = AuthReply | Pong | SubscribeReply | OpReply | TradeReply

# Which link may carry which data (BYBIT_V5.md sections 5, 6): a private topic on a public link (or the
# reverse) is the remote's mistake, to be reported and dropped, never applied.
PRIVATE_MESSAGES: frozenset[type] = frozenset(
    {PositionMessage, OrderMessage, ExecutionMessage, FastExecutionMessage, WalletMessage, GreeksMessage}
)
PUBLIC_MESSAGES: frozenset[type] = frozenset(
    {TickerMessage, OrderbookMessage, PublicTradeMessage, KlineMessage, LiquidationMessage}
)
Message = TopicMessage | ControlMessage


def _decoder(typ: Any, strict: bool = True) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(typ, dec_hook=dec_hook, strict=strict)


# Topic families by the topic's first dot-separated word (BYBIT_V5.md §5, §6). Tickers decode non-strict
# so that `nextFundingTime:"1786665600000"` becomes an int natively.
_TICKERS = _decoder(TickerMessage, strict=False)
_FAMILIES: dict[str, msgspec.json.Decoder[Any]] = {
    "tickers": _TICKERS,
    "orderbook": _decoder(OrderbookMessage),
    "publicTrade": _decoder(PublicTradeMessage),
    "kline": _decoder(KlineMessage),
    "allLiquidation": _decoder(LiquidationMessage),
    "liquidation": _decoder(OldLiquidationMessage),
    "position": _decoder(PositionMessage),
    "order": _decoder(OrderMessage),
    "execution": _decoder(ExecutionMessage),
    "wallet": _decoder(WalletMessage),
    "greeks": _decoder(GreeksMessage),
}
_FAST = _decoder(FastExecutionMessage)
_OTHER = _decoder(OtherTopicMessage)
_ENVELOPE = msgspec.json.Decoder(Envelope)

# In valid JSON `":""` can only be a key followed by an empty string value (a `"` inside a string is
# escaped), so rewriting it to `":null` turns Bybit's "not applicable" into None before msgspec sees it.
_EMPTY_B = re.compile(rb'":\s*""')
_EMPTY_S = re.compile(r'":\s*""')


def _family(topic: str) -> msgspec.json.Decoder[Any]:
    head, _, rest = topic.partition(".")
    if head == "execution" and (rest == "fast" or rest.startswith("fast.")):
        return _FAST
    if head == "orderbook" and rest.startswith("rpi."):
        return _OTHER  # the RPI book is a different product with its own level shape
    return _FAMILIES.get(head, _OTHER)


def _decoder_for(topic: str) -> msgspec.json.Decoder[Any]:
    entry = _BY_TOPIC.get(topic)
    return entry[0] if entry is not None else _family(topic)


# Per raw topic slice (str or bytes, as found in the frame): its decoder and the topic as str. Topics come
# from the remote, so the cache is bounded; past the bound lookups still work, only slower.
_BY_TOPIC: dict[str | bytes, tuple[msgspec.json.Decoder[Any], str]] = {}
_BY_TOPIC_MAX = 4096


def _entry(key: str | bytes) -> tuple[msgspec.json.Decoder[Any], str] | None:
    try:
        topic = key if isinstance(key, str) else key.decode()
    except UnicodeDecodeError:
        return None
    if "\\" in topic:
        return None  # an escaped topic: let the envelope pass unescape it
    entry = (_family(topic), topic)
    if len(_BY_TOPIC) < _BY_TOPIC_MAX:
        _BY_TOPIC[key] = entry
    return entry


def _typed(dec: msgspec.json.Decoder[Any], data: bytes | str) -> Any:
    if dec is not _TICKERS:
        return dec.decode(data)
    try:
        return dec.decode(data)  # deltas rarely hold a "" (measured: skipping the rewrite pays)
    except msgspec.ValidationError:
        if isinstance(data, str):
            return dec.decode(_EMPTY_S.sub('":null', data))
        return dec.decode(_EMPTY_B.sub(b'":null', data))


def _fast(data: bytes | str) -> Any:
    """The common case in one pass, or None: a compact topic frame that decodes and needs no walk.

    Two C-level finds locate `"topic":"` (Bybit sends compact JSON; anything else takes the envelope
    path, slower but just as correct); the typed decode then re-checks that this was the top-level topic.
    """
    if isinstance(data, str):
        i = data.find('"topic":"') + 9
        j = data.find('"', i) if i > 8 else -1
    else:
        i = data.find(b'"topic":"') + 9
        j = data.find(b'"', i) if i > 8 else -1
    if j < 0:
        return None
    key = data[i:j]
    entry = _BY_TOPIC.get(key) or _entry(key)
    if entry is None:
        return None
    dec, topic = entry
    try:
        msg = _typed(dec, data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None  # the envelope pass names the real topic and the real problem
    if msg.topic != topic or type(msg) is OldLiquidationMessage:
        return None
    vet_numbers(msg, data, topic)
    return msg


def _finish(msg: Any, data: bytes | str, topic: str) -> TopicMessage:
    vet_numbers(msg, data, topic)
    if isinstance(msg, OldLiquidationMessage):
        msg = msg.convert()
    result: TopicMessage = msg
    return result


# ------------------------------------------------------------------------------------- vetting numbers
# Market data is the hot path: a gate per family says, from the decoded message and its raw bytes, whether
# a rule might be broken; only then is the message walked. Each gate counts the integer fields the message
# really holds (bare JSON numbers that are legitimate: `ts`, `cs`, `u`, `T`...), so any other bare number
# trips `numbers_suspect`, and names the keys whose values may be negative. A ticker's mark must be > 0:
# one attribute, checked directly.


def _signed_keys(*classes: type, market: bool = False) -> frozenset[bytes]:
    return frozenset(
        market_key(f.encode_name) if market else wire_key(f.encode_name)
        for cls in classes
        for f in msgspec.structs.fields(cls)
        if f.name in RULES[cls].signed
    )


_TICKER_SIGNED = _signed_keys(TickerData, market=True)
_NONE: frozenset[bytes] = frozenset()


def _ticker_gate(msg: TickerMessage, raw: bytes) -> bool:
    if market_suspect(raw, 1 if msg.cs is None else 2, _TICKER_SIGNED):  # ts, cs
        return True
    mark = msg.data.mark_price  # finite now: a NaN would have shown as `nan` (and `NaN > 0` raises)
    return mark.__class__ is Decimal and not mark > 0  # UNSET and None skip it


def _book_gate(msg: OrderbookMessage, raw: bytes) -> bool:
    d = msg.data  # ts, u, cts, seq (an absent seq is 0; a sent 0 only costs a walk)
    return market_suspect(raw, 2 + (msg.cts is not None) + (d.seq != 0), _NONE)


def _trade_gate(msg: PublicTradeMessage, raw: bytes) -> bool:
    # Every Decimal of a trade came through the hook (finite, sane, a string): only signs are left.
    for t in msg.data:
        if t.size < 0 or t.price < 0:
            return True
        mark, index = t.mark_price, t.index_price  # options only
        if (mark is not None and mark < 0) or (index is not None and index < 0):
            return True
    return False


def _kline_gate(msg: KlineMessage, raw: bytes) -> bool:
    ints = 1 + 3 * len(msg.data)  # ts; start, end, timestamp per candle
    return looks_suspect(raw) or numbers_suspect(raw, ints, _NONE)


def _liquidation_gate(msg: LiquidationMessage | OldLiquidationMessage, raw: bytes) -> bool:
    ints = 1 + (len(msg.data) if isinstance(msg.data, tuple) else 1)  # ts; T (updatedTime) per row
    return looks_suspect(raw) or numbers_suspect(raw, ints, _NONE)


_GATES: dict[type, Callable[[Any, bytes], bool]] = {
    TickerMessage: _ticker_gate,
    OrderbookMessage: _book_gate,
    PublicTradeMessage: _trade_gate,
    KlineMessage: _kline_gate,
    LiquidationMessage: _liquidation_gate,
    OldLiquidationMessage: _liquidation_gate,
}
# Untyped, for telling strings from bare numbers: floats as Decimal, so that `1e999` (out of a float's range,
# which msgspec refuses untyped) still decodes, as what it is: not a string.
_UNTYPED = msgspec.json.Decoder(float_hook=Decimal)
_WALKED = (
    PositionMessage, OrderMessage, ExecutionMessage, FastExecutionMessage, WalletMessage, GreeksMessage,
)  # fmt: skip


def vet_numbers(msg: Any, data: bytes | str, topic: str) -> None:
    """Raise DecodeError if a number in `msg` breaks its field's rule (see `_codec.fields.check_values`)."""
    gate = _GATES.get(type(msg))
    if gate is None and not isinstance(msg, _WALKED):
        return  # OtherTopicMessage: raw data, nothing typed
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if gate is not None and not gate(msg, raw):
        return
    # The untyped decode tells a decimal string from a bare number; the typed decode already passed, so it
    # is valid JSON.
    bad = check_values(msg, _UNTYPED.decode(raw))
    if bad is not None:
        raise DecodeError(f"{topic}: {bad}")


def _utf8_fault(data: bytes | str) -> str | None:
    """Our own words for a frame that is not UTF-8 (the error path only: msgspec's wording changes)."""
    if isinstance(data, str):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8: {exc.reason} at byte {exc.start}"
    return None


def _slow(data: bytes | str) -> Message:
    try:
        env = _ENVELOPE.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(explain("frame", exc)) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not JSON: {_utf8_fault(data) or exc}") from None
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not JSON: invalid UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise DecodeError("not JSON: nested too deeply") from None
    if env.topic is None:
        return classify_control(env)
    try:
        msg = _typed(_decoder_for(env.topic), data)
    except msgspec.DecodeError as exc:
        raise DecodeError(explain(env.topic, exc)) from None
    return _finish(msg, data, env.topic)


def decode(data: bytes | str) -> Message:
    """Decode one inbound WebSocket message (a text frame's payload) into a typed Struct.

    Args:
        data: the frame payload, as bytes (UTF-8) or str.

    Returns:
        A topic message (`TickerMessage`, `OrderbookMessage`, ..., `OtherTopicMessage`) or a control reply
        (`AuthReply`, `Pong`, `SubscribeReply`, `OpReply`, `TradeReply`).

    Raises:
        DecodeError: for anything else, naming the topic and field at fault (e.g.
            "tickers.BTCUSDT: data.markPrice: expected a decimal string") or "not JSON: ...".
    """
    try:
        msg = _fast(data)
        return msg if msg is not None else _slow(data)
    except DecodeError:
        raise
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        # Defence in depth: nothing but DecodeError may leave (ARCHITECTURE "the core's contract").
        raise DecodeError(f"undecodable frame: {type(exc).__name__}: {exc}") from None
