"""The core's output vocabulary: events for the application, actions for the adapter.

Everything here is a small frozen msgspec Struct (h11/h2 style). Events are nouns or past tense; actions
are imperative verbs. Events are tagged with their class name, so `msgspec.json.encode(event)` gives a
self-describing JSON object (the CLI's NDJSON output relies on this).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, NamedTuple

import msgspec

from ._codec import (
    ExecutionRow,
    FastExecutionRow,
    GreeksRow,
    Kline,
    Liquidation,
    OrderRow,
    PublicTrade,
    TickerData,
    TopicMessage,
    WalletRow,
)
from ._config import Link
from ._health import Health

__all__ = [
    "Action",
    "AuthFailed",
    "Authenticated",
    "Dial",
    "Event",
    "ExecutionUpdate",
    "FallbackEnded",
    "FallbackStarted",
    "FastExecutionUpdate",
    "FetchPositions",
    "FetchTickers",
    "FetchTime",
    "GreeksUpdate",
    "HandshakeRefused",
    "Hangup",
    "HealthChanged",
    "KlineUpdate",
    "Level",
    "LinkConnected",
    "LinkDown",
    "LinkUp",
    "Liquidations",
    "MarksCompared",
    "ModeChanged",
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
    "PublicTrades",
    "RestCall",
    "RestRequest",
    "RollbackEnded",
    "RolledBack",
    "Send",
    "SnapshotFailed",
    "Subscribed",
    "SubscriptionFailed",
    "TickerUpdate",
    "TopicData",
    "TopicReset",
    "Unsubscribed",
    "WalletUpdate",
]


class PositionKey(NamedTuple):
    """Which position: (category, symbol, positionIdx). A plain tuple compares and hashes equal to it."""

    category: str
    symbol: str
    position_idx: int  # 0 one-way, 1 hedge Buy leg, 2 hedge Sell leg


Level = tuple[Decimal, Decimal]
"""(price, size) of one order book level."""


# --------------------------------------------------------------------------------------------- actions


class Action(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Something the adapter must do, in the order given."""

    link: Link


class Dial(Action, frozen=True):
    """Open TCP (+ TLS for wss://) to `url`'s host, then call `core.connected(link, now)`."""

    url: str


class Send(Action, frozen=True):
    """Write these bytes to the link's socket."""

    data: bytes


class Hangup(Action, frozen=True):
    """Close the link's socket (the core has already sent a close frame where one was due)."""

    reason: str


_SECRET_HEADERS = frozenset({"X-BAPI-API-KEY", "X-BAPI-SIGN"})


class RestRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A fully signed HTTP request. `headers` hold the API key and signature; repr masks them."""

    id: int
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    category: str
    cursor: str = ""
    settle_coin: str = ""
    symbol: str = ""
    purpose: Literal["snapshot", "poll", "tickers", "time"] = "snapshot"

    def __repr__(self) -> str:
        shown = tuple((k, "***" if k in _SECRET_HEADERS else v) for k, v in self.headers)
        return (
            f"RestRequest(id={self.id}, method={self.method!r}, url={self.url!r}, headers={shown!r}, "
            f"category={self.category!r}, cursor={self.cursor!r}, settle_coin={self.settle_coin!r}, "
            f"symbol={self.symbol!r}, purpose={self.purpose!r})"
        )


class RestCall(Action, frozen=True):
    """Perform `request` (an HTTP request, signed where the endpoint needs it) and hand the answer to
    `core.rest_answer(request, status, body, now)`; on a transport failure or after `timeout` seconds, call
    it with `status=0` and `body=b""`. Every REST action is one: an adapter needs only this class."""

    request: RestRequest
    timeout: float = 10.0


class FetchPositions(RestCall, frozen=True):
    """`GET /v5/position/list`: the REST snapshot of open positions (and REST polling of them).
    `core.positions_snapshot(...)` is the same as `core.rest_answer(...)`."""


class FetchTickers(RestCall, frozen=True):
    """`GET /v5/market/tickers`: marks over REST (the marks fallback and the comparison against REST)."""


class FetchTime(RestCall, frozen=True):
    """`GET /v5/market/time`: the exchange's clock (an offset sample for latency and auth `expires`)."""


# ---------------------------------------------------------------------------------------------- events


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Base of everything the core reports. `at` is the `now` of the input that produced it."""

    link: Link
    at: float


# links


class LinkConnected(Event, frozen=True):
    """The WebSocket handshake completed (HTTP 101). Private links still have to authenticate."""

    url: str


class LinkUp(Event, frozen=True):
    """The link is usable: connected and, on the private link, authenticated."""


class LinkDown(Event, frozen=True):
    """The link is gone. `retry_in` is when the core will redial (None: it will not)."""

    reason: str
    retry_in: float | None


class HandshakeRefused(Event, frozen=True):
    """The server answered the upgrade with an HTTP status instead of 101 (403 is Bybit's geo-block)."""

    status: int
    reason: str
    hint: str


class Authenticated(Event, frozen=True):
    """The private link's auth was accepted."""


class AuthFailed(Event, frozen=True):
    """The private link's auth was refused. The core backs off (`retry_in`) and tries again."""

    reason: str
    hint: str
    retry_in: float


class Subscribed(Event, frozen=True):
    topics: tuple[str, ...]


class Unsubscribed(Event, frozen=True):
    topics: tuple[str, ...]


class SubscriptionFailed(Event, frozen=True):
    """The server (or a connection limit) refused `topic`.

    A topic an open position needs (its ticker) is retried on the same connection with jittered backoff
    for as long as the position needs it: `retry_in` says when the next try goes out, and a topic refused
    again and again is reported at most once per `Timings.refusal_report_interval` (`refusals` counts the
    refusals this report stands for). Any other topic is reported once (`retry_in` None) and not retried
    until asked again or until a fresh connection.
    """

    topic: str
    reason: str
    retry_in: float | None = None
    refusals: int = 1


class TopicReset(Event, frozen=True):
    """A topic stopped making progress and the core is getting it back (docs/operations.md, "liveness").

    Attributes:
        topic: the topic, e.g. "tickers.ETHUSDT" (for a REST snapshot remedy: "position").
        reason: what was wrong, e.g. "no push for 5 s while the link is LIVE" or "5 deltas in a row older
            than the state held (cs 9000000000 held)".
        remedy: what the core does about it: "resubscribe" (unsubscribe + subscribe: a fresh snapshot),
            "redial" (the connection is replaced) or "snapshot" (positions are fetched over REST).
    """

    topic: str
    reason: str
    remedy: Literal["resubscribe", "redial", "snapshot"]


class HealthChanged(Event, frozen=True):
    """`HybridCore.health()` changed: a rule started or stopped firing. `link` is the private link (the
    public one without credentials): the verdict is about the whole stream."""

    health: Health


class ProtocolProblem(Event, frozen=True):
    """The remote sent something the core could not use. Nothing was raised and no state was lost."""

    detail: str
    sample: str = ""


# market data


class TickerUpdate(Event, frozen=True):
    """The merged ticker after a snapshot or a delta.

    Fields never sent are `UNSET`; `None` means not applicable.
    """

    category: str
    symbol: str
    ticker: TickerData
    snapshot: bool
    ts: int
    cs: int | None = None


class OrderbookUpdate(Event, frozen=True):
    """One order book message applied. `bids`/`asks` are the levels the message carried (size 0 = removed);
    the full book is `core.orderbook(...)`. `best_bid`/`best_ask` are after applying."""

    category: str
    symbol: str
    depth: int
    snapshot: bool
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    best_bid: Level | None
    best_ask: Level | None
    u: int
    seq: int
    ts: int
    cts: int | None = None


class PublicTrades(Event, frozen=True):
    category: str
    topic: str
    trades: tuple[PublicTrade, ...]


class KlineUpdate(Event, frozen=True):
    category: str
    topic: str
    candles: tuple[Kline, ...]


class Liquidations(Event, frozen=True):
    category: str
    topic: str
    liquidations: tuple[Liquidation, ...]


class TopicData(Event, frozen=True):
    """A topic with no dedicated event (e.g. dcp, insurance, system.status): the decoded message."""

    topic: str
    message: TopicMessage


# account data


class OrderUpdate(Event, frozen=True):
    order: OrderRow


class ExecutionUpdate(Event, frozen=True):
    execution: ExecutionRow


class FastExecutionUpdate(Event, frozen=True):
    execution: FastExecutionRow


class WalletUpdate(Event, frozen=True):
    wallet: WalletRow


class GreeksUpdate(Event, frozen=True):
    greeks: GreeksRow


# the hybrid join


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """A position as the exchange states it (no live mark): what `core.positions()` returns."""

    category: str
    symbol: str
    position_idx: int
    side: str  # "Buy" | "Sell"
    size: Decimal
    avg_price: Decimal
    leverage: Decimal | None = None
    liq_price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    trailing_stop: Decimal | None = None
    position_status: str = "Normal"
    seq: int = -1
    updated_ms: int = 0

    @property
    def key(self) -> PositionKey:
        return PositionKey(self.category, self.symbol, self.position_idx)


class PositionUpdate(Event, frozen=True):
    """An open position priced at the live mark. Emitted when the position or its mark changes."""

    category: str
    symbol: str
    position_idx: int
    side: str
    size: Decimal
    avg_price: Decimal
    mark_price: Decimal | None
    mark_ts: int | None  # exchange ms of the ticker (or position message) the mark came from
    mark_age: float | None  # seconds since that mark arrived
    unrealised_pnl: Decimal | None
    pnl_pct: Decimal | None  # unrealised PnL / (avg_price-based notional) * 100
    liq_price: Decimal | None
    take_profit: Decimal | None
    stop_loss: Decimal | None
    trailing_stop: Decimal | None
    leverage: Decimal | None
    seq: int
    updated_ms: int
    cause: Literal["position", "mark", "snapshot"]
    stale: bool
    source: Literal["ticker", "rest", "position"] = "position"
    """Where the mark came from: the live ticker, a REST answer (polling, the fallback, a snapshot), or the
    position's own push (fresh only at the push)."""

    @property
    def key(self) -> PositionKey:
        return PositionKey(self.category, self.symbol, self.position_idx)


class PositionOpened(Event, frozen=True):
    position: Position
    cause: Literal["position", "snapshot"]


class PositionClosed(Event, frozen=True):
    """The position went flat (or vanished from a REST snapshot). `position` is its last open state."""

    position: Position
    cause: Literal["position", "snapshot"]
    seq: int


class PositionsSynced(Event, frozen=True):
    """A REST snapshot of `category` (all pages) was reconciled with the stream."""

    category: str
    open_positions: int


class SnapshotFailed(Event, frozen=True):
    """A REST snapshot request failed; the core retries after `retry_in` seconds."""

    category: str
    reason: str
    retry_in: float


# ------------------------------------------------------------------------------------------- rollout


class FallbackStarted(Event, frozen=True):
    """The stream cannot say it, so REST does: `what="positions"` (the private link is down: positions are
    polled) or `what="marks"` (these symbols' marks are stale: their marks are polled), until the stream is
    back (`FallbackEnded`)."""

    what: Literal["positions", "marks"]
    symbols: tuple[str, ...] = ()
    reason: str = ""


class FallbackEnded(Event, frozen=True):
    """The stream speaks again for `what` (and `symbols`): the REST fallback for it stopped."""

    what: Literal["positions", "marks"]
    symbols: tuple[str, ...] = ()


class MarksCompared(Event, frozen=True):
    """A REST mark compared with the stream's mark of the same symbol at the same moment.

    `divergence_pct` is |stream - rest| / rest * 100; `diverged` is it above `Rollout.divergence_pct`.
    """

    category: str
    symbol: str
    stream_mark: Decimal
    rest_mark: Decimal
    divergence_pct: Decimal
    diverged: bool


class ModeChanged(Event, frozen=True):
    """`HybridCore.set_mode` switched the rollout mode (positions handed over with no gap or duplicate)."""

    mode: str
    previous: str
    share: float


class RolledBack(Event, frozen=True):
    """The health verdict went critical in production or cutover: every position is now driven by REST
    polling, until the stream is healthy for `Rollout.return_after` (or `HybridCore.resume()`)."""

    reasons: tuple[str, ...]
    mode: str


class RollbackEnded(Event, frozen=True):
    """Positions are driven by the stream again (`how`: "healthy" after `Rollout.return_after`, or "by hand").
    `rolled_back_for` is how long REST drove."""

    how: Literal["healthy", "by hand"]
    rolled_back_for: float


# ---------------------------------------------------------------------------------------------- output


class Output(msgspec.Struct, frozen=True):
    """What `HybridCore.poll()` returns: actions for the adapter, events for the application, and when
    to call `tick()` next (None: only when input arrives)."""

    actions: tuple[Action, ...]
    events: tuple[Event, ...]
    deadline: float | None
