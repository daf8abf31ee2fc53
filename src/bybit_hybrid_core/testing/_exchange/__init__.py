"""FACE OF bybit_hybrid_core.testing._exchange (docstring to be written)."""

from __future__ import annotations

from .conn import ServerAction, ServerClose, ServerSend
from .exchange import DEFAULT_START_MS, FakeExchange, VenueLike
from .ops import ExchangeFaults

__all__ = [
    "DEFAULT_START_MS",
    "ExchangeFaults",
    "FakeExchange",
    "ServerAction",
    "ServerClose",
    "ServerSend",
    "VenueLike",
]
