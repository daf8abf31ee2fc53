"""Bybit V5 in a box: `FakeExchange` (the sans-IO server side), the `Venue` behind it, and `Simulation`
(a HybridCore wired to a FakeExchange in memory, on a virtual clock).

    from bybit_hybrid_core.testing import FakeExchange, Simulation
    sim = Simulation(config, seed=3)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(2.0)

See docs/testing.md. `auth_reply`, `pong_reply`, `subscribe_reply` and `dumps` build Bybit's replies for a
server of your own (bench/ uses them).
"""

from ._exchange import (
    DEFAULT_START_MS,
    ExchangeFaults,
    FakeExchange,
    ServerAction,
    ServerClose,
    ServerSend,
    VenueLike,
    auth_reply,
    dumps,
    pong_reply,
    subscribe_reply,
)
from ._sim import Simulation, SimulationStuck
from ._sim_chaos import FAULTS, Chaos
from ._venue import OrderRejected, Venue

__all__ = [
    "DEFAULT_START_MS",
    "FAULTS",
    "Chaos",
    "ExchangeFaults",
    "FakeExchange",
    "OrderRejected",
    "ServerAction",
    "ServerClose",
    "ServerSend",
    "Simulation",
    "SimulationStuck",
    "Venue",
    "VenueLike",
    "auth_reply",
    "dumps",
    "pong_reply",
    "subscribe_reply",
]
