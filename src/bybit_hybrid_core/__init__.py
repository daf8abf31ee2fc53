"""bybit_hybrid_core: a sans-IO Bybit V5 WebSocket client core.

Feed it bytes and clock ticks; it answers with frames to send, links to dial and typed events::

    core = HybridCore(Config(categories=("linear",), credentials=Credentials(key, secret)))
    core.start(now=0.0, wall_ms=...)
    out = core.poll()        # Output(actions=(Dial(...), ...), events=(...), deadline=...)

See docs/architecture.md for the contract, docs/join.md for the position/mark join. This face holds what an
application matches on (events, actions, `HybridCore`, `Config` and its parts, `LinkStatus`); the wire
vocabulary (every message Struct, `encode_*`) is in `bybit_hybrid_core.codec`, Bybit in a box in
`bybit_hybrid_core.testing`.
"""

from __future__ import annotations

from ._codec import (
    ExecutionRow,
    ExtraFee,
    FastExecutionRow,
    GreeksRow,
    Kline,
    Liquidation,
    OrderRow,
    PublicTrade,
    TickerData,
    WalletCoin,
    WalletRow,
    decode,
)
from ._config import CATEGORIES, MAX_SHARDS, Config, Credentials, Endpoints, Environment, Link, Timings
from ._core import HybridCore
from ._errors import DecodeError, LocalProtocolError
from ._events import (
    Action,
    Authenticated,
    AuthFailed,
    Dial,
    Event,
    ExecutionUpdate,
    FastExecutionUpdate,
    FetchPositions,
    GreeksUpdate,
    HandshakeRefused,
    Hangup,
    KlineUpdate,
    Level,
    LinkConnected,
    LinkDown,
    LinkUp,
    Liquidations,
    OrderbookUpdate,
    OrderUpdate,
    Output,
    Position,
    PositionClosed,
    PositionKey,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    ProtocolProblem,
    PublicTrades,
    RestRequest,
    Send,
    SnapshotFailed,
    Subscribed,
    SubscriptionFailed,
    TickerUpdate,
    TopicData,
    TopicReset,
    Unsubscribed,
    WalletUpdate,
)
from ._health import LinkStatus
from ._link import LinkState

__all__ = [
    "CATEGORIES",
    "MAX_SHARDS",
    "Action",
    "AuthFailed",
    "Authenticated",
    "Config",
    "Credentials",
    "DecodeError",
    "Dial",
    "Endpoints",
    "Environment",
    "Event",
    "ExecutionRow",
    "ExecutionUpdate",
    "ExtraFee",
    "FastExecutionRow",
    "FastExecutionUpdate",
    "FetchPositions",
    "GreeksRow",
    "GreeksUpdate",
    "HandshakeRefused",
    "Hangup",
    "HybridCore",
    "Kline",
    "KlineUpdate",
    "Level",
    "Link",
    "LinkConnected",
    "LinkDown",
    "LinkState",
    "LinkStatus",
    "LinkUp",
    "Liquidation",
    "Liquidations",
    "LocalProtocolError",
    "OrderRow",
    "OrderUpdate",
    "OrderbookUpdate",
    "Output",
    "Position",
    "PositionClosed",
    "PositionKey",
    "PositionOpened",
    "PositionUpdate",
    "PositionsSynced",
    "ProtocolProblem",
    "PublicTrade",
    "PublicTrades",
    "RestRequest",
    "Send",
    "SnapshotFailed",
    "Subscribed",
    "SubscriptionFailed",
    "TickerData",
    "TickerUpdate",
    "Timings",
    "TopicData",
    "TopicReset",
    "Unsubscribed",
    "WalletCoin",
    "WalletRow",
    "WalletUpdate",
    "decode",
]
