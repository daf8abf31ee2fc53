"""The application's commands, the same on every adapter (each runs `fn(core)` its own way in `_command`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bybit_hybrid_core import HybridCore

__all__ = ["Commands"]


class Commands:
    """`track`, `untrack`, `subscribe`, `unsubscribe`: see `HybridCore` for what each does."""

    def _command(self, fn: Callable[[HybridCore], Any]) -> Any:
        raise NotImplementedError

    def track(self, symbol: str, category: str | None = None) -> None:
        """Keep `symbol`'s ticker (its live mark) subscribed without a position."""
        self._command(lambda core: core.track(symbol, category))

    def untrack(self, symbol: str, category: str | None = None) -> None:
        """Drop one `track`; the ticker goes after the grace period unless a position needs it."""
        self._command(lambda core: core.untrack(symbol, category))

    def subscribe(self, topic: str, category: str | None = None) -> None:
        """Any public topic (with `category` unless one is configured) or private topic."""
        self._command(lambda core: core.subscribe(topic, category))

    def unsubscribe(self, topic: str, category: str | None = None) -> None:
        self._command(lambda core: core.unsubscribe(topic, category))
