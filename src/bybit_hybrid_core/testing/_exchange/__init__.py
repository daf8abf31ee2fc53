"""The FakeExchange: Bybit V5's server side, sans-IO, routed by path.

`exchange` (`FakeExchange`) owns the connections (`conn`: one wsproto server each, with its per-connection
faults), answers like Bybit (`replies`: the real texts and shapes of acks, pongs and refusals, written with
Bybit's escaping), serves the signed REST position list (`rest`), keeps the checks on what clients send and
the pending faults (`ops`), and injects faults on request (`faults`). It never imports the core's codec or
wire: it is an independent oracle for them.
"""

from __future__ import annotations

from .conn import ServerAction, ServerClose, ServerSend
from .exchange import DEFAULT_START_MS, FakeExchange, VenueLike
from .ops import ExchangeFaults
from .replies import auth_reply, dumps, pong_reply, subscribe_reply

__all__ = [
    "DEFAULT_START_MS",
    "ExchangeFaults",
    "FakeExchange",
    "ServerAction",
    "ServerClose",
    "ServerSend",
    "VenueLike",
    "auth_reply",
    "dumps",
    "pong_reply",
    "subscribe_reply",
]
