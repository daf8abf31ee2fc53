"""Bybit V5 in a box: `FakeExchange` (the sans-IO server side) and the `Venue` behind it.

    from bybit_hybrid_core.testing import FakeExchange
    ex = FakeExchange(seed=0, api_key="test-key", api_secret="test-secret")
    conn = ex.accept(now); ex.receive(conn, data, now); actions = ex.poll()

See docs/testing.md.
"""

from ._exchange import DEFAULT_START_MS, FakeExchange, VenueLike
from ._exchange_conn import ServerAction, ServerClose, ServerSend
from ._exchange_ops import ExchangeFaults
from ._venue import OrderRejected, Venue

__all__ = [
    "DEFAULT_START_MS",
    "ExchangeFaults",
    "FakeExchange",
    "OrderRejected",
    "ServerAction",
    "ServerClose",
    "ServerSend",
    "Venue",
    "VenueLike",
]
