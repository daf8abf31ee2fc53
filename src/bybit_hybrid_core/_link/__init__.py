"""One connection, across its sockets: the wire, the state table, subscriptions, policy and counters.

`wire` frames bytes into text messages (wsproto for the upgrade, the close handshake and outbound
frames; `frames.FrameReader` for the server's frames); `states` is the link's `TRANSITIONS` table;
`connection` (`LinkConnection`) drives it with wire events, replies and timers and returns what each
input produced; `subs` reconciles desired and confirmed topics within Bybit's limits; `policy` holds the
backoffs, the dial budget and the hints. It imports the codec and the top-level vocabulary, never the
data plane: the two meet only in `HybridCore`.
"""

from __future__ import annotations

from .connection import LinkConnection, Produced
from .policy import DialBudget
from .states import TRANSITIONS, Input, LinkState
from .subs import OPTION_MAX_ARGS, PUBLIC_MAX_ARG_CHARS, private_family

__all__ = [
    "OPTION_MAX_ARGS",
    "PUBLIC_MAX_ARG_CHARS",
    "TRANSITIONS",
    "DialBudget",
    "Input",
    "LinkConnection",
    "LinkState",
    "Produced",
    "private_family",
]
