"""Control frames: replies to auth/ping/subscribe/other ops (inbound) and the ops we send (outbound).

Reply shapes differ per endpoint (BYBIT_V5.md §2-§4, §7), so inbound control frames are decoded into one
permissive `Envelope` and classified in the order of "Practical consequences" item 1. Outbound ops are
tagged Structs with explicit tags: renaming a class must never change the wire.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec import field

from .._errors import DecodeError

__all__ = [
    "AuthReply",
    "Envelope",
    "OpReply",
    "Pong",
    "SubscribeReply",
    "TradeReply",
    "classify_control",
    "encode_auth",
    "encode_ping",
    "encode_subscribe",
    "encode_unsubscribe",
]

_ABSENT = msgspec.Raw()
_NULL = msgspec.Raw(b"null")


class AuthReply(msgspec.Struct, frozen=True, kw_only=True):
    """Private-stream auth answer (§2). Decide by `success`; `ret_msg` is e.g. "Params Error"."""

    success: bool
    ret_msg: str = ""
    req_id: str | None = None
    conn_id: str | None = None


class Pong(msgspec.Struct, frozen=True, kw_only=True):
    """Any pong shape (§3): public `op:"ping"`+`ret_msg:"pong"`, option/private/trade `op:"pong"`.

    `server_ms` is the server time in `args`/`data` when the shape carries one.
    """

    req_id: str | None = None
    conn_id: str | None = None
    server_ms: int | None = None


class SubscribeReply(msgspec.Struct, frozen=True, kw_only=True):
    """A subscribe or unsubscribe ack (§4), including the option `type:"COMMAND_RESP"` shape.

    Decide by `success` only. The topic lists are filled only by the option shape (`data.successTopics`/
    `data.failTopics`); other endpoints name a failed topic in `ret_msg` only.
    """

    op: str  # "subscribe" | "unsubscribe"
    success: bool
    ret_msg: str = ""
    req_id: str | None = None
    conn_id: str | None = None
    success_topics: tuple[str, ...] = ()
    fail_topics: tuple[str, ...] = ()


class OpReply(msgspec.Struct, frozen=True, kw_only=True):
    """A reply to any other op, e.g. `error:invalid op` or `order.create` sent to the private stream (§8)."""

    op: str
    success: bool
    ret_msg: str = ""
    req_id: str | None = None
    conn_id: str | None = None


class TradeReply(msgspec.Struct, frozen=True, kw_only=True):
    """A reply of the Trade WS family (§7): camelCase `retCode`/`retMsg`/`reqId`/`connId`.

    `ret_code == 0` means accepted (not executed); batch results are in `ret_ext_info`.
    """

    ret_code: int
    ret_msg: str = ""
    op: str | None = None
    req_id: str | None = None
    conn_id: str | None = None
    data: msgspec.Raw = _NULL
    ret_ext_info: msgspec.Raw = _NULL
    header: dict[str, str | int] = {}

    @property
    def success(self) -> bool:
        return self.ret_code == 0


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Every top-level key any inbound frame may carry; the classifier's view of a frame."""

    topic: str | None = None
    op: str | None = None
    type: str | None = None
    success: bool | None = None
    ret_msg: str | None = None
    req_id: str | None = None
    conn_id: str | None = None
    # A missing key leaves an empty Raw (msgspec cannot type `Raw | None`).
    args: msgspec.Raw = _ABSENT
    data: msgspec.Raw = _ABSENT
    ret_code: int | None = field(default=None, name="retCode")
    ret_msg_camel: str | None = field(default=None, name="retMsg")
    req_id_camel: str | None = field(default=None, name="reqId")
    conn_id_camel: str | None = field(default=None, name="connId")
    ret_ext_info: msgspec.Raw = field(default=_ABSENT, name="retExtInfo")
    header: dict[str, str | int] | None = None


class _CommandData(msgspec.Struct, frozen=True, rename="camel"):
    success_topics: tuple[str, ...] = ()
    fail_topics: tuple[str, ...] = ()


_COMMAND_DEC = msgspec.json.Decoder(_CommandData)
_TIMES_DEC = msgspec.json.Decoder(tuple[str | int, ...])

ControlReply = AuthReply | Pong | SubscribeReply | OpReply | TradeReply


def _server_ms(raw: msgspec.Raw) -> int | None:
    # The ts is `args[0]` (option/private, a string of digits) or `data[0]` (trade); absent on public pongs.
    if not raw:
        return None
    try:
        items = _TIMES_DEC.decode(raw)
    except msgspec.ValidationError:
        return None
    first = items[0] if items else None
    if isinstance(first, str) and first.isdigit() and first.isascii() and len(first) <= 20:
        return int(first)
    return first if isinstance(first, int) else None


def _trade(env: Envelope) -> ControlReply:
    if env.op == "pong":
        return Pong(req_id=env.req_id_camel, conn_id=env.conn_id_camel, server_ms=_server_ms(env.data))
    if env.ret_code is None:
        raise DecodeError("trade reply: reqId without retCode")
    return TradeReply(
        ret_code=env.ret_code,
        ret_msg=env.ret_msg_camel or "",
        op=env.op,
        req_id=env.req_id_camel,
        conn_id=env.conn_id_camel,
        data=env.data or _NULL,
        ret_ext_info=env.ret_ext_info or _NULL,
        header=env.header or {},
    )


def _command_resp(env: Envelope) -> SubscribeReply:
    # The option/spread ack has no `op`, `ret_msg` or `req_id` (§4); treat it as a subscribe ack.
    try:
        lists = _COMMAND_DEC.decode(env.data) if env.data else _CommandData()
    except msgspec.ValidationError as exc:
        raise DecodeError(f"COMMAND_RESP: data: {exc}") from None
    return SubscribeReply(
        op="subscribe",
        success=bool(env.success),
        ret_msg=env.ret_msg or "",
        req_id=env.req_id,
        conn_id=env.conn_id,
        success_topics=lists.success_topics,
        fail_topics=lists.fail_topics,
    )


def classify_control(env: Envelope) -> ControlReply:
    """Classify a frame without `topic` (§"Practical consequences" item 1, after the topic check)."""
    if env.ret_code is not None or env.req_id_camel is not None:
        return _trade(env)
    if env.type == "COMMAND_RESP":
        return _command_resp(env)
    op = env.op
    if op is None:
        raise DecodeError("unrecognised frame: no topic, op, retCode or type")
    if op == "pong" or (op == "ping" and env.ret_msg == "pong"):
        return Pong(req_id=env.req_id, conn_id=env.conn_id, server_ms=_server_ms(env.args))
    ret_msg = env.ret_msg or ""
    success = bool(env.success)
    if op == "auth":
        return AuthReply(success=success, ret_msg=ret_msg, req_id=env.req_id, conn_id=env.conn_id)
    if op in ("subscribe", "unsubscribe"):
        return SubscribeReply(op=op, success=success, ret_msg=ret_msg, req_id=env.req_id, conn_id=env.conn_id)
    return OpReply(op=op, success=success, ret_msg=ret_msg, req_id=env.req_id, conn_id=env.conn_id)


# ------------------------------------------------------------------------------------------- outbound


class _Op(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="op"):
    req_id: str | None = None


class _Auth(_Op, frozen=True, tag="auth"):
    # [api_key, expires (a JSON number, ms), signature] in this order (§2).
    args: tuple[str, int, str]


class _Subscribe(_Op, frozen=True, tag="subscribe"):
    args: tuple[str, ...]


class _Unsubscribe(_Op, frozen=True, tag="unsubscribe"):
    args: tuple[str, ...]


class _Ping(_Op, frozen=True, tag="ping"):
    pass


_ENCODER = msgspec.json.Encoder()


def encode_auth(api_key: str, expires_ms: int, signature: str, req_id: str | None = None) -> str:
    """`{"op":"auth","req_id":..,"args":[api_key, expires_ms, signature]}` (§2). Never log the result."""
    return _ENCODER.encode(_Auth(req_id=req_id, args=(api_key, expires_ms, signature))).decode()


def encode_subscribe(topics: Iterable[str], req_id: str | None = None) -> str:
    """`{"op":"subscribe","req_id":..,"args":[topics...]}` (§4); batching limits are the caller's job."""
    return _ENCODER.encode(_Subscribe(req_id=req_id, args=tuple(topics))).decode()


def encode_unsubscribe(topics: Iterable[str], req_id: str | None = None) -> str:
    """`{"op":"unsubscribe","req_id":..,"args":[topics...]}` (§4)."""
    return _ENCODER.encode(_Unsubscribe(req_id=req_id, args=tuple(topics))).decode()


def encode_ping(req_id: str | None = None) -> str:
    """`{"op":"ping","req_id":..}` (§3): the JSON ping every link sends every 20 s."""
    return _ENCODER.encode(_Ping(req_id=req_id)).decode()
