"""The codec: a text frame's payload to a typed message and back. No bytes, no state, no clock.

`frames.decode` classifies and decodes every inbound Bybit V5 frame; `public` and `private` hold the topic
Structs, `control` the replies (auth, pong, subscribe acks) and the ops we send, `fields` Bybit's number
types and the rules every number obeys. Imported by the link (decode), the data plane (the Structs, the
number rules for REST rows) and the events (rows they carry); the public `bybit_hybrid_core.codec` is its
face for users.
"""

from __future__ import annotations

from .control import (
    AuthReply,
    OpReply,
    Pong,
    SubscribeReply,
    TradeReply,
    encode_auth,
    encode_ping,
    encode_subscribe,
    encode_unsubscribe,
)
from .fields import RULES, DecimalOrNone, FieldRules, check_values, dec_hook, explain
from .frames import (
    PRIVATE_MESSAGES,
    PUBLIC_MESSAGES,
    ControlMessage,
    Message,
    OtherTopicMessage,
    TopicMessage,
    decode,
    vet_numbers,
)
from .private import (
    ExecutionMessage,
    ExecutionRow,
    ExtraFee,
    FastExecutionMessage,
    FastExecutionRow,
    GreeksMessage,
    GreeksRow,
    OrderMessage,
    OrderRow,
    PositionMessage,
    PositionRow,
    WalletCoin,
    WalletMessage,
    WalletRow,
)
from .public import (
    Kline,
    KlineMessage,
    Liquidation,
    LiquidationMessage,
    OrderbookData,
    OrderbookMessage,
    PublicTrade,
    PublicTradeMessage,
    TickerData,
    TickerMessage,
)

__all__ = [
    "PRIVATE_MESSAGES",
    "PUBLIC_MESSAGES",
    "RULES",
    "AuthReply",
    "ControlMessage",
    "DecimalOrNone",
    "ExecutionMessage",
    "ExecutionRow",
    "ExtraFee",
    "FastExecutionMessage",
    "FastExecutionRow",
    "FieldRules",
    "GreeksMessage",
    "GreeksRow",
    "Kline",
    "KlineMessage",
    "Liquidation",
    "LiquidationMessage",
    "Message",
    "OpReply",
    "OrderMessage",
    "OrderRow",
    "OrderbookData",
    "OrderbookMessage",
    "OtherTopicMessage",
    "Pong",
    "PositionMessage",
    "PositionRow",
    "PublicTrade",
    "PublicTradeMessage",
    "SubscribeReply",
    "TickerData",
    "TickerMessage",
    "TopicMessage",
    "TradeReply",
    "WalletCoin",
    "WalletMessage",
    "WalletRow",
    "check_values",
    "dec_hook",
    "decode",
    "encode_auth",
    "encode_ping",
    "encode_subscribe",
    "encode_unsubscribe",
    "explain",
    "vet_numbers",
]
