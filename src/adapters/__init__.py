"""bybit_hybrid: thin I/O adapters around the sans-IO `bybit_hybrid_core`.

    from bybit_hybrid import HybridStream                  # anyio: asyncio or trio
    from bybit_hybrid.asyncio import HybridStream          # stdlib asyncio only, same API
    from bybit_hybrid.threaded import HybridStream         # threads: blocking iterator or on_event callback
    from bybit_hybrid.bot import BybitHybridStream         # the drop-in for an existing bot
    from bybit_hybrid.server import ServedExchange         # the FakeExchange on real sockets (tests, demos)

See docs/adapters.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bybit_hybrid_core import Config, Credentials, Endpoints, Link, Timings

from ._queue import CallbackFailed
from ._startup import StartupFailed

if TYPE_CHECKING:
    from ._anyio import HybridStream

__all__ = [
    "CallbackFailed",
    "Config",
    "Credentials",
    "Endpoints",
    "HybridStream",
    "Link",
    "StartupFailed",
    "Timings",
]


def __getattr__(name: str) -> Any:
    # Lazily, so `bybit_hybrid.asyncio` and `bybit_hybrid.threaded` work without importing anyio.
    if name == "HybridStream":
        from ._anyio import HybridStream

        return HybridStream
    raise AttributeError(f"module 'bybit_hybrid' has no attribute {name!r}")
