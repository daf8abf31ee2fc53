"""Health: per-link counters kept by the link, and the `LinkStatus` snapshot `HybridCore.status()` returns."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ._config import Link

__all__ = ["LinkCounters", "LinkStatus"]


@dataclass(slots=True)
class LinkCounters:
    """Mutable counters of one link (since the core started)."""

    dials: int = 0
    reconnects: int = 0  # dials after the first
    downs: int = 0
    messages: int = 0
    problems: int = 0
    pings: int = 0
    pongs: int = 0
    stale_inputs: int = 0  # bytes or connects that belonged to a socket the core already gave up
    last_message_at: float | None = None
    last_pong_rtt: float | None = None
    live_since: float | None = None

    def message_age(self, now: float) -> float | None:
        return None if self.last_message_at is None else max(0.0, now - self.last_message_at)


class LinkStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One link's health as `HybridCore.status()` reports it.

    Attributes:
        state: the link state machine's state name (IDLE, DIALING, ..., LIVE, BACKOFF).
        connected: the WebSocket is upgraded (it may still be authenticating).
        authenticated: the private link's auth was accepted on this connection (always False on public).
        subscriptions: topics the server confirmed on this connection.
        pending: topics sent and not answered yet.
        failed: topics refused for good on this connection (a user's own topic; not retried until asked
            again or a fresh connection), with the reason.
        retrying: refused topics a position needs, with the seconds until the next try on this connection.
        reconnects: dials after the first one.
        last_message_age: seconds since the last message on this link (None: none yet).
        last_pong_rtt: seconds between the last JSON ping and its pong.
        live_for: seconds since the link became usable (None: not live).
    """

    link: Link
    url: str
    state: str
    connected: bool
    authenticated: bool
    subscriptions: tuple[str, ...]
    pending: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    reconnects: int
    dials: int
    downs: int
    messages: int
    problems: int
    last_message_age: float | None
    last_pong_rtt: float | None
    live_for: float | None
    retrying: tuple[tuple[str, float], ...] = ()
