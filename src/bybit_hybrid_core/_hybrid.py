"""The hybrid join: positions priced at live marks, and the ticker subscriptions that follow them.

Skeleton of the `DataPlane` contract (TEAM.md "The data plane"); the body is being filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._codec import TickerData, TopicMessage
    from ._config import Config, Link
    from ._events import Action, Event, Level, Position, PositionKey, RestRequest

__all__ = ["DataPlane"]


class DataPlane:
    """Everything above the links: market state, the position book and the join (skeleton)."""

    def __init__(self, config: Config, emit: Callable[[Event], None], act: Callable[[Action], None]) -> None:
        self._config = config
        self._emit = emit
        self._act = act
        self.wanted_version = 0

    def on_message(self, link: Link, msg: TopicMessage, now: float) -> None:
        """Apply one decoded topic message."""

    def on_link_up(self, link: Link, now: float, wall_ms: int) -> None:
        """A link is live (private: authenticated)."""

    def on_link_down(self, link: Link, now: float) -> None:
        """A link went down: its tickers are stale until their next snapshot."""

    def on_subscribed(self, link: Link, topics: tuple[str, ...], now: float) -> None:
        """The server confirmed `topics` on `link`."""

    def positions_snapshot(self, request: RestRequest, status: int, body: bytes, now: float, wall_ms: int) -> None:
        """The answer to a `FetchPositions` action."""

    def tick(self, now: float, wall_ms: int) -> None:
        """Run the timers that are due."""

    def deadline(self) -> float | None:
        """The earliest time `tick` has something to do."""
        return None

    def wanted_topics(self) -> Mapping[Link, frozenset[str]]:
        """Ticker topics the join needs per public link."""
        return {}

    def track(self, category: str, symbol: str) -> None:
        """Pin `symbol`'s ticker without a position."""

    def untrack(self, category: str, symbol: str) -> None:
        """Drop one pin of `symbol`."""

    def positions(self) -> dict[PositionKey, Position]:
        """The open positions."""
        return {}

    def ticker(self, symbol: str, category: str | None = None) -> TickerData | None:
        """The merged ticker of `symbol`."""
        return None

    def orderbook(
        self, category: str, symbol: str, depth: int | None = None
    ) -> tuple[tuple[Level, ...], tuple[Level, ...]] | None:
        """The full book (bids, asks), best first."""
        return None
