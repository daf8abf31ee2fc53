"""Which ticker topics the join wants: symbols with an open leg, pinned symbols, and those within their grace.

Reference counted per (category, symbol): every open leg (positionIdx 0, 1, 2) counts once, every
`track()` once. When both counts reach zero the topic stays wanted for `ticker_release_grace` seconds
(ARCHITECTURE.md: no churn on close-and-reopen) and is released when that grace ends with no new reason.
Spot has no mark price and no positions, but a spot ticker can be pinned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._config import Link
from .._timers import Deadlines

__all__ = ["PUBLIC_LINKS", "TickerInterest", "ticker_topic"]

PUBLIC_LINKS = (Link.LINEAR, Link.INVERSE, Link.SPOT, Link.OPTION)


def ticker_topic(symbol: str) -> str:
    return f"tickers.{symbol}"


class TickerInterest:
    """Reference counts of legs and pins per (category, symbol), grace timers, and the wanted topics."""

    __slots__ = ("_cache", "_grace", "_legs", "_pins", "_wanted", "grace", "version")

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.version = 0
        self._legs: dict[tuple[str, str], int] = {}
        self._pins: dict[tuple[str, str], int] = {}
        self._wanted: dict[tuple[str, str], None] = {}  # insertion-ordered set
        self._grace: Deadlines[tuple[str, str]] = Deadlines()  # (category, symbol) in its release grace
        self._cache: Mapping[Link, frozenset[str]] | None = None

    # ------------------------------------------------------------------------------ reasons come and go

    def leg_opened(self, category: str, symbol: str) -> None:
        key = (category, symbol)
        self._legs[key] = self._legs.get(key, 0) + 1
        self._want(key)

    def leg_closed(self, category: str, symbol: str, now: float) -> None:
        key = (category, symbol)
        count = self._legs.get(key, 0) - 1
        if count > 0:
            self._legs[key] = count
            return
        self._legs.pop(key, None)
        self._maybe_release(key, now)

    def pin(self, category: str, symbol: str) -> None:
        key = (category, symbol)
        self._pins[key] = self._pins.get(key, 0) + 1
        self._want(key)

    def unpin(self, category: str, symbol: str, now: float) -> bool:
        """Drop one pin; False when the symbol was not pinned (nothing changes)."""
        key = (category, symbol)
        count = self._pins.get(key, 0)
        if count == 0:
            return False
        if count > 1:
            self._pins[key] = count - 1
        else:
            del self._pins[key]
            self._maybe_release(key, now)
        return True

    # ------------------------------------------------------------------------------------------ timers

    def tick(self, now: float) -> None:
        for name in self._grace.due(now):
            # a new leg or pin cancels the grace (`_want`), so the symbol is wanted for no reason now
            del self._wanted[name]
            self._changed()

    def deadline(self) -> float | None:
        return self._grace.earliest()

    def queues(self) -> tuple[Deadlines[Any], ...]:
        """The timer queues behind `deadline()` (the data plane takes their earliest in one pass)."""
        return (self._grace,)

    # ----------------------------------------------------------------------------------------- answers

    def wanted(self) -> Mapping[Link, frozenset[str]]:
        """Ticker topics per public link (every public link is present, possibly with an empty set)."""
        if self._cache is None:
            topics: dict[Link, set[str]] = {link: set() for link in PUBLIC_LINKS}
            for category, symbol in self._wanted:
                topics[Link(category)].add(ticker_topic(symbol))
            self._cache = {link: frozenset(names) for link, names in topics.items()}
        return self._cache

    # ---------------------------------------------------------------------------------------- internal

    def _want(self, key: tuple[str, str]) -> None:
        self._grace.cancel(key)
        if key not in self._wanted:
            self._wanted[key] = None
            self._changed()

    def _maybe_release(self, key: tuple[str, str], now: float) -> None:
        if key in self._legs or key in self._pins or key not in self._wanted:
            return
        if self.grace <= 0:
            del self._wanted[key]
            self._changed()
        else:
            self._grace.set(key, now + self.grace)

    def _changed(self) -> None:
        self.version += 1
        self._cache = None
