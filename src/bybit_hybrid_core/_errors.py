"""Exceptions of the core.

Only *local* mistakes raise out of the core (h11's rule): calling the API in a way that cannot work.
Anything the remote side sends, however broken, becomes a `ProtocolProblem` event instead.
"""

from __future__ import annotations

__all__ = ["DecodeError", "LocalProtocolError"]


class LocalProtocolError(Exception):
    """The caller misused the API (e.g. `receive()` before `start()`).

    The message says what to do instead. The core's state is unchanged when this is raised.
    """


class DecodeError(ValueError):
    """`decode()` could not turn the input into a known Bybit V5 message; the message names what was wrong."""
