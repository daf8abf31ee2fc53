"""The codec: one `decode()` for every inbound Bybit V5 frame, and the encoders for the ops we send.

Theory of operation. Almost every frame is a topic message, so `decode` first looks for the top-level
`"topic":"..."` with two `find`s, picks the typed decoder of that topic's family (built once, at import) and
decodes the whole frame in a single pass. Only when that fails, or the frame has no topic, does it decode a
permissive `Envelope` and classify it in the order of BYBIT_V5.md "Practical consequences" item 1:
topic -> data; retCode/reqId -> trade reply; type COMMAND_RESP -> option subscribe ack; op -> control reply.
The envelope pass also gives errors a correct name when the fast guess was wrong.

Bare JSON numbers in money fields are refused by that decode itself (`fields.Dec`); then every Decimal
of the message is vetted (`vetting.vet_numbers`): finite, sane magnitude, the right sign for its field, in
one pass over the decoded message. The frame is decoded once; only a refusal decodes it again, untyped, to
say in our words which field held a bare number.

Whatever the input, `decode` returns a `Message` or raises `DecodeError`, whose text says what was wrong.
"""

from __future__ import annotations

import re
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
from .fields import BARE, dec_hook, error_path, explain
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
    TickerMessage,
)
from .vetting import vet_numbers

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


def _decoder(typ: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(typ, dec_hook=dec_hook)


# Topic families by the topic's first dot-separated word (BYBIT_V5.md §5, §6). All strict: `Dec` needs it
# (lax mode would parse "5" as the int it refuses); a ticker's string ints go through the hook.
_TICKERS = _decoder(TickerMessage)
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
        return dec.decode(_without_empty(data))


def _without_empty(data: bytes | str) -> bytes | str:
    return _EMPTY_S.sub('":null', data) if isinstance(data, str) else _EMPTY_B.sub(b'":null', data)


def _retry_empty(dec: msgspec.json.Decoder[Any], refusal: DecodeError, data: bytes | str, topic: str) -> Any:
    """The message `refusal` refused, decoded again without its "" fields, if that is what broke it.

    msgspec parses a Decimal in the thread's decimal context: where that does not trap InvalidOperation,
    `Decimal("")` is NaN, not an error, so a ticker's "" never triggered `_typed`'s rewrite and a "not
    applicable" field would be refused as NaN. The error path tries the rewrite before refusing.
    """
    rewritten = _without_empty(data) if dec is _TICKERS else data
    if rewritten == data:
        raise refusal
    try:
        msg = dec.decode(rewritten)
    except msgspec.DecodeError:
        raise refusal from None
    vet_numbers(msg, topic)
    return msg


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
        msg = dec.decode(data)  # `_typed`, inlined: this runs for every message
    except msgspec.ValidationError:
        try:
            msg = dec.decode(_without_empty(data)) if dec is _TICKERS else None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        if msg is None:
            return None  # the envelope pass names the real topic and the real problem
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if msg.topic != topic or type(msg) is OldLiquidationMessage:
        return None
    try:
        vet_numbers(msg, topic)
    except DecodeError as refusal:
        return _retry_empty(dec, refusal, data, topic)
    return msg


def _finish(dec: msgspec.json.Decoder[Any], msg: Any, data: bytes | str, topic: str) -> TopicMessage:
    try:
        vet_numbers(msg, topic)
    except DecodeError as refusal:
        msg = _retry_empty(dec, refusal, data, topic)
    if isinstance(msg, OldLiquidationMessage):
        msg = msg.convert()
    result: TopicMessage = msg
    return result


# ------------------------------------------------------------------------------------------ refusals
# Untyped, for telling strings from bare numbers: floats as Decimal, so that `1e999` (out of a float's range,
# which msgspec refuses untyped) still decodes, as what it is: not a string.
_UNTYPED = msgspec.json.Decoder(float_hook=Decimal)
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+|\.\.\.)\]")


def _bare_at(doc: Any, path: str) -> str | None:
    """`path` (msgspec's, "data.b[0][1]"; a dict value is "[...]") with dict keys named, if the value there
    in the untyped `doc` is a bare JSON number; else None."""
    named = ""
    for match in _STEP.finditer(path):
        key, index = match.groups()
        if index == "...":  # some value of a dict: the first bare one (Bybit's maps are small)
            if type(doc) is not dict:
                return None
            key = next((k for k, v in doc.items() if type(v) in (int, Decimal)), None)
            if key is None:
                return None
        if key is not None:
            if type(doc) is not dict or key not in doc:
                return None
            doc, named = doc[key], f"{named}.{key}" if named else key
        else:
            i = int(index)
            if type(doc) is not list or i >= len(doc):
                return None
            doc, named = doc[i], f"{named}[{i}]"
    return named if type(doc) in (int, Decimal) else None


def _refusal(where: str, exc: msgspec.DecodeError, data: bytes | str) -> str:
    """Our words for a failed typed decode: a bare number in a money field (refused by `Dec`) by its path,
    anything else as `explain` puts it. The error path only: this decodes the frame once more."""
    if isinstance(exc, msgspec.ValidationError):
        path = error_path(exc)[1]
        try:
            bare = _bare_at(_UNTYPED.decode(data), path) if path else None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            bare = None
        if bare is not None:
            return f"{where}: {bare}: {BARE}"
    return explain(where, exc)


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
    dec = _decoder_for(env.topic)
    try:
        msg = _typed(dec, data)
    except msgspec.DecodeError as exc:
        raise DecodeError(_refusal(env.topic, exc, data)) from None
    return _finish(dec, msg, data, env.topic)


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
