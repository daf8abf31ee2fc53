"""Health and metrics: per-link counters kept by the link, the `LinkStatus` snapshot `HybridCore.status()`
returns, and the typed snapshots `HybridCore.health()` and `HybridCore.metrics()` return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

from ._config import Link

__all__ = [
    "Health",
    "HealthReason",
    "Latency",
    "LinkCounters",
    "LinkMetrics",
    "LinkStatus",
    "Metrics",
    "Verdict",
]


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


Verdict = Literal["ok", "warning", "critical"]


class HealthReason(msgspec.Struct, frozen=True, kw_only=True):
    """One rule that fires: its name (a `HealthRules` field, e.g. "link_down_warning"), its level, what the
    core sees ("linear not LIVE for 31 s"), and since when (`now` of the core's clock)."""

    rule: str
    level: Literal["warning", "critical"]
    detail: str
    since: float


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict: "critical" if any reason is critical, else "warning" if any, else "ok"; `since` is when
    the verdict last changed."""

    verdict: Verdict
    reasons: tuple[HealthReason, ...]
    since: float


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    """Exchange time to delivered message, corrected by the server clock-offset estimate.

    `bounds` are the histogram's bucket upper bounds in seconds; `counts[i]` counts the samples in bucket i
    (not cumulative; the last one is everything above the last bound); `sum` is their total in seconds.
    The percentiles (ms) are read off the buckets (an upper bound, within one bucket's width); None
    without samples.
    """

    count: int
    sum: float
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class LinkMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """One link's counters: `uptime` is the total seconds it was LIVE since start, `live_for` the current
    stretch; `subscription_failures_1h` counts refusals within the last hour."""

    link: Link
    state: str
    uptime: float
    live_for: float | None
    dials: int
    reconnects: int
    downs: int
    messages: int
    problems: int
    subscription_failures_1h: int
    last_message_age: float | None
    ping_rtt: float | None


class Metrics(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `HybridCore.metrics()` counts, at `at` (the core's clock).

    Attributes:
        events: events emitted since start, by class name ("PositionUpdate": 1234, ...).
        events_per_second: over the last `window` seconds.
        clock_offset_ms: the server's clock minus ours (pong timestamps, REST `time`), None before an
            estimate; latency is corrected by it, so a skewed host clock does not fake latency.
        open_positions, positions_with_ticker: how many open positions there are, and how many of them have
            their ticker confirmed on a LIVE link (the gauge "every open position has its ticker").
    """

    at: float
    links: tuple[LinkMetrics, ...]
    events: dict[str, int]
    events_per_second: float
    window: float
    problems: int
    subscription_failures_1h: int
    latency: Latency
    clock_offset_ms: float | None
    open_positions: int
    positions_with_ticker: int
