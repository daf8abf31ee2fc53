"""One link's state machine: dial -> handshake -> (auth) -> live, with pings, deadlines and redials.

Theory of operation
-------------------
A link is one logical WebSocket (a public category, or the private stream) that outlives its sockets.
Its life is a small table, `TRANSITIONS[(state, input)] -> state` (h11's `_state.py`, h2's state machine):

    IDLE --DIAL--> DIALING --CONNECTED--> HANDSHAKING --UPGRADED--> LIVE                  (public)
                                                       --UPGRADED_AUTH--> AUTHENTICATING --AUTH_OK--> LIVE
    any connected state --(REMOTE_CLOSED | BROKEN | TIMEOUT | LOST | REFUSED | AUTH_REFUSED)--> BACKOFF
    BACKOFF --DIAL--> DIALING, or --DIAL_DEFERRED--> BACKOFF when the per-host dial budget is spent

A pair missing from the table is an illegal input, and who caused it decides what happens:
* the caller (`connected`, `receive`, `lost` at the wrong time): `LocalProtocolError`, state unchanged;
* the remote (an auth ack when not authenticating, data before auth): a `ProtocolProblem`, state unchanged;
* the core itself: a bug, also `LocalProtocolError`.

Bytes or a connect that arrive for a socket the core already hung up are *stale* (adapters cannot always
avoid that race: the bytes may already be queued when they perform the Hangup); they are counted and dropped.

Timers are data (`Deadlines`, aioquic style), named per link: `connect`, `handshake`, `auth` and
`subscribe` (ack deadlines), `ping` (a JSON ping every 20 s on every link, BYBIT_V5.md section 3), `pong`
(10 s after a ping), and `redial`. Every timeout hangs up and redials with backoff (0.5 s * 2^n, capped at
30 s, full jitter, reset once a link has stayed live for the cap), within the per-host dial budget. A
refused auth backs off to minutes (`Timings.auth_backoff_base`): a bad key must not hammer the venue.

After every (re)connect the private link authenticates first, and only after the auth ack does it
subscribe, because Bybit refuses private topics before that ("Request not authorized", BYBIT_V5.md section
2); then every desired topic is subscribed again (`LinkSubs`).

This module holds the vocabulary (states, inputs, the table); `_link.connection.LinkConnection` drives it.
"""

from __future__ import annotations

import enum

from .._errors import LocalProtocolError

__all__ = [
    "CALLER_INPUTS",
    "REMOTE_INPUTS",
    "TRANSITIONS",
    "Input",
    "LinkState",
    "LinkStateMachine",
    "misuse",
]


class LinkState(enum.Enum):
    # Members are singletons compared by identity, so hash them by identity too: Enum's own __hash__ is
    # Python code, and TRANSITIONS is looked up several times per message (docs/performance.md).
    __hash__ = object.__hash__

    IDLE = "IDLE"  # never dialed
    DIALING = "DIALING"  # Dial asked for; waiting for TCP (+TLS)
    HANDSHAKING = "HANDSHAKING"  # upgrade request sent; waiting for HTTP 101
    AUTHENTICATING = "AUTHENTICATING"  # private: auth sent; waiting for its ack
    LIVE = "LIVE"  # usable: subscribing, receiving, pinging
    BACKOFF = "BACKOFF"  # no socket; waiting to redial


class Input(enum.Enum):
    __hash__ = object.__hash__  # see LinkState

    # from the caller (the adapter, through HybridCore)
    CONNECTED = "CONNECTED"
    BYTES = "BYTES"  # includes b"" (end of stream)
    STALE = "STALE"  # bytes for a socket already given up
    LOST = "LOST"
    # from the remote (what the bytes meant)
    UPGRADED = "UPGRADED"
    UPGRADED_AUTH = "UPGRADED_AUTH"
    REFUSED = "REFUSED"
    AUTH_OK = "AUTH_OK"
    AUTH_REFUSED = "AUTH_REFUSED"
    PONG = "PONG"
    SUB_ACK = "SUB_ACK"
    TOPIC = "TOPIC"
    REMOTE_CLOSED = "REMOTE_CLOSED"
    BROKEN = "BROKEN"
    # from the core itself (decisions and timers)
    DIAL = "DIAL"
    DIAL_DEFERRED = "DIAL_DEFERRED"
    PING_DUE = "PING_DUE"
    TIMEOUT = "TIMEOUT"


CALLER_INPUTS = frozenset({Input.CONNECTED, Input.BYTES, Input.STALE, Input.LOST})
REMOTE_INPUTS = frozenset(
    {
        Input.UPGRADED,
        Input.UPGRADED_AUTH,
        Input.REFUSED,
        Input.AUTH_OK,
        Input.AUTH_REFUSED,
        Input.PONG,
        Input.SUB_ACK,
        Input.TOPIC,
        Input.REMOTE_CLOSED,
        Input.BROKEN,
    }
)

_S, _I = LinkState, Input
_GONE = (_I.LOST, _I.REMOTE_CLOSED, _I.BROKEN, _I.TIMEOUT)
TRANSITIONS: dict[tuple[LinkState, Input], LinkState] = {
    (_S.IDLE, _I.DIAL): _S.DIALING,
    (_S.IDLE, _I.DIAL_DEFERRED): _S.BACKOFF,
    (_S.DIALING, _I.CONNECTED): _S.HANDSHAKING,
    (_S.DIALING, _I.STALE): _S.DIALING,
    (_S.DIALING, _I.LOST): _S.BACKOFF,
    (_S.DIALING, _I.TIMEOUT): _S.BACKOFF,
    (_S.HANDSHAKING, _I.BYTES): _S.HANDSHAKING,
    (_S.HANDSHAKING, _I.UPGRADED): _S.LIVE,
    (_S.HANDSHAKING, _I.UPGRADED_AUTH): _S.AUTHENTICATING,
    (_S.HANDSHAKING, _I.REFUSED): _S.BACKOFF,
    **{(_S.HANDSHAKING, i): _S.BACKOFF for i in _GONE},
    (_S.AUTHENTICATING, _I.BYTES): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _I.AUTH_OK): _S.LIVE,
    (_S.AUTHENTICATING, _I.AUTH_REFUSED): _S.BACKOFF,
    (_S.AUTHENTICATING, _I.PONG): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _I.PING_DUE): _S.AUTHENTICATING,
    **{(_S.AUTHENTICATING, i): _S.BACKOFF for i in _GONE},
    (_S.LIVE, _I.BYTES): _S.LIVE,
    (_S.LIVE, _I.PONG): _S.LIVE,
    (_S.LIVE, _I.SUB_ACK): _S.LIVE,
    (_S.LIVE, _I.TOPIC): _S.LIVE,
    (_S.LIVE, _I.PING_DUE): _S.LIVE,
    **{(_S.LIVE, i): _S.BACKOFF for i in _GONE},
    (_S.BACKOFF, _I.DIAL): _S.DIALING,
    (_S.BACKOFF, _I.DIAL_DEFERRED): _S.BACKOFF,
    (_S.BACKOFF, _I.CONNECTED): _S.BACKOFF,  # a dial we gave up on completed late: hang it up
    (_S.BACKOFF, _I.STALE): _S.BACKOFF,
    (_S.BACKOFF, _I.LOST): _S.BACKOFF,
}
del _S, _I


class LinkStateMachine:
    """The table, applied (h11's ConnectionState): one state, inputs in, illegal pairs sorted by culprit."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = LinkState.IDLE

    def accepts(self, event: Input) -> bool:
        return (self.state, event) in TRANSITIONS

    def process(self, event: Input) -> bool:
        """Apply `event`. Illegal remote input returns False (report it); anything else illegal raises."""
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            if event in REMOTE_INPUTS:
                return False
            raise LocalProtocolError(misuse(self.state, event))
        self.state = new
        return True


def misuse(state: LinkState, event: Input) -> str:
    if state is LinkState.IDLE:
        return f"{event.name} on a link that was never dialed: call start(now, wall_ms) first"
    if event is Input.CONNECTED:
        return f"connected() while the link is {state.name}: call it once per Dial action"
    if event in (Input.BYTES, Input.STALE):
        return f"receive() while the link is {state.name}: call connected() after the Dial first"
    return f"{event.name} is not allowed while the link is {state.name}"
