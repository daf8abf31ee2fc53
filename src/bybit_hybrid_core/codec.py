"""The wire vocabulary, public: every Bybit V5 message as a typed Struct, `decode`, and the ops we send.

For code that speaks Bybit's JSON itself (benchmarks, tests, a hand-written adapter, a recorder) rather than
through `HybridCore`'s events: `decode(frame)` gives a `TickerMessage`, `OrderbookMessage`, ...,
`OtherTopicMessage` or a control reply (`AuthReply`, `Pong`, `SubscribeReply`, `OpReply`, `TradeReply`),
or raises `DecodeError` naming what was wrong; `encode_*` build the requests; `vet_numbers(msg, topic)` is
the number check `decode` runs on every decoded message, one pass over its Decimals (exposed so its cost can
be measured on its own, bench/bench_decode.py).
"""

from __future__ import annotations

from ._codec import (
    AuthReply,
    ControlMessage,
    ExecutionMessage,
    FastExecutionMessage,
    GreeksMessage,
    KlineMessage,
    LiquidationMessage,
    Message,
    OpReply,
    OrderbookData,
    OrderbookMessage,
    OrderMessage,
    OtherTopicMessage,
    Pong,
    PositionMessage,
    PositionRow,
    PublicTradeMessage,
    SubscribeReply,
    TickerMessage,
    TopicMessage,
    TradeReply,
    WalletMessage,
    decode,
    encode_auth,
    encode_ping,
    encode_subscribe,
    encode_unsubscribe,
    vet_numbers,
)
from ._errors import DecodeError

__all__ = [
    "AuthReply",
    "ControlMessage",
    "DecodeError",
    "ExecutionMessage",
    "FastExecutionMessage",
    "GreeksMessage",
    "KlineMessage",
    "LiquidationMessage",
    "Message",
    "OpReply",
    "OrderMessage",
    "OrderbookData",
    "OrderbookMessage",
    "OtherTopicMessage",
    "Pong",
    "PositionMessage",
    "PositionRow",
    "PublicTradeMessage",
    "SubscribeReply",
    "TickerMessage",
    "TopicMessage",
    "TradeReply",
    "WalletMessage",
    "decode",
    "encode_auth",
    "encode_ping",
    "encode_subscribe",
    "encode_unsubscribe",
    "vet_numbers",
]
