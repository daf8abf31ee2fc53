"""The data plane: all state above the links, fed decoded messages, link ups and downs, and REST answers.

`plane` (`DataPlane`) composes `market` (merged tickers) and `books` (order books), `account` (the position
book), `join` (positions priced at the live mark), `sync` and `rest` (the signed REST snapshot and its
answers), `topics` (which tickers the join needs) and `pnl`. It imports the codec and the top-level
vocabulary, never the links: the two meet only in `HybridCore`.
"""

from __future__ import annotations

from .plane import DataPlane

__all__ = ["DataPlane"]
