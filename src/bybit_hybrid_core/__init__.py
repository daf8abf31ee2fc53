"""bybit_hybrid_core: a sans-IO Bybit V5 WebSocket client core.

Feed it bytes and clock ticks; it answers with frames to send, links to dial and typed events.
"""

from ._config import CATEGORIES, Config, Credentials, Endpoints, Environment, Link, Timings
from ._errors import DecodeError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "CATEGORIES",
    "Config",
    "Credentials",
    "DecodeError",
    "Endpoints",
    "Environment",
    "Link",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Timings",
]
