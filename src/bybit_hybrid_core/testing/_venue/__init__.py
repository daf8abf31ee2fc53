"""FACE OF bybit_hybrid_core.testing._venue (docstring to be written)."""

from __future__ import annotations

from .account import OrderRejected
from .venue import Venue

__all__ = ["OrderRejected", "Venue"]
