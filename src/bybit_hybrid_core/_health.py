"""Health and metrics: per-link counters kept by the link, the `LinkStatus` snapshot `HybridCore.status()`
returns, and the typed snapshots `HybridCore.health()` and `HybridCore.metrics()` return."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import msgspec

from ._config import Link

__all__ = [
    "LATENCY_BOUNDS",
    "DivergenceMetrics",
    "EventRate",
    "Health",
    "HealthReason",
    "Latency",
    "LatencyRecorder",
    "LinkCounters",
    "LinkMetrics",
    "LinkStatus",
    "Metrics",
    "RolloutStatus",
    "SymbolDivergence",
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
    uptime: float = 0.0  # seconds LIVE before the current stretch
    down_since: float | None = None  # not LIVE since (None while LIVE)
    refused_at: deque[float] = field(
        default_factory=deque
    )  # every topic refusal, pruned to the health window

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


class SymbolDivergence(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol's comparisons of REST marks with the stream's (see `DivergenceMetrics`)."""

    comparisons: int
    divergences: int
    max_pct: Decimal
    last_pct: Decimal


class DivergenceMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """REST marks compared with the stream's at the same moment (parallel: every poll; production and
    cutover: every `Rollout.compare_interval`). A divergence differs by more than `threshold_pct` %.
    `by_symbol` is keyed "category:symbol"."""

    comparisons: int = 0
    divergences: int = 0
    max_pct: Decimal = Decimal(0)
    threshold_pct: Decimal = Decimal(1)
    by_symbol: dict[str, SymbolDivergence] = msgspec.field(default_factory=dict)


class RolloutStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where the rollout stands: the mode, what drives, the REST fallbacks in force, a rollback."""

    mode: str
    share: float
    rest_polling: bool
    positions_fallback: bool
    marks_fallback: tuple[str, ...]
    rolled_back_for: float | None
    rollback_reasons: tuple[str, ...]
    rest_requests: int
    clock_failures: int = (
        0  # REST time samples that failed (a failed status 0 included); not reported as events
    )


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
    divergence: DivergenceMetrics = msgspec.field(default_factory=DivergenceMetrics)
    rollout: RolloutStatus | None = None


# ------------------------------------------------------------------------------------------- latency

# Bucket upper bounds in seconds: 1 ms to 60 s, roughly x1.6 apart (Prometheus-style fixed buckets), so a
# sample costs one bisect and one integer increment, and percentiles are read within a bucket's width.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
)  # fmt: skip
_BOUNDS_MS = tuple(b * 1000.0 for b in LATENCY_BOUNDS)


class LatencyRecorder:
    """Exchange time to arrival, corrected by the server clock-offset estimate, in fixed buckets.

    Two histograms: everything since start (`Metrics.latency`), and a recent one that restarts every
    `window` seconds, keeping the previous window too, so a rule can ask for the p99 of the last one or two
    minutes. No allocation per sample beyond Python's own floats.
    """

    __slots__ = ("_previous", "_recent", "_recent_start", "count", "counts", "offset_ms", "sum", "window")

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.offset_ms: float | None = None  # server clock minus ours
        self._recent = [0] * (len(LATENCY_BOUNDS) + 1)
        self._previous = [0] * (len(LATENCY_BOUNDS) + 1)
        self._recent_start = 0.0

    def observe(self, exchange_ms: int, wall_ms: int, now: float) -> None:
        """A message stamped `exchange_ms` by the server arrived at `wall_ms` on our clock (at `now`)."""
        lag = wall_ms - exchange_ms + (self.offset_ms or 0.0)  # our clock, moved onto the server's
        if lag < 0.0:
            lag = 0.0  # the estimate's error; a message cannot arrive before it was stamped
        i = bisect_left(_BOUNDS_MS, lag)
        self.counts[i] += 1
        self.count += 1
        self.sum += lag
        if now >= self._recent_start + self.window:
            self._previous, self._recent = self._recent, self._previous
            for j in range(len(self._recent)):
                self._recent[j] = 0
            self._recent_start = now
        self._recent[i] += 1

    def clock_sample(self, server_ms: int, wall_ms: int, rtt: float) -> None:
        """A server timestamp seen `rtt / 2` after the server wrote it: one offset sample (smoothed)."""
        sample = server_ms - (wall_ms - rtt * 500.0)
        self.offset_ms = sample if self.offset_ms is None else self.offset_ms * 0.8 + sample * 0.2

    def snapshot(self) -> Latency:
        return Latency(
            count=self.count,
            sum=self.sum / 1000.0,
            bounds=LATENCY_BOUNDS,
            counts=tuple(self.counts),
            p50_ms=_quantile(self.counts, 0.50),
            p95_ms=_quantile(self.counts, 0.95),
            p99_ms=_quantile(self.counts, 0.99),
        )

    def recent_p99_ms(self) -> float | None:
        """The p99 over the current and the previous window (one to two windows of samples)."""
        merged = [a + b for a, b in zip(self._recent, self._previous, strict=True)]
        return _quantile(merged, 0.99)


def _quantile(counts: list[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the q-quantile; past the last bound, that bound."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return _BOUNDS_MS[min(i, len(_BOUNDS_MS) - 1)]
    return _BOUNDS_MS[-1]


class EventRate:
    """Events per second over a sliding window of one-second buckets (a ring: no allocation per event)."""

    __slots__ = ("_ring", "_second", "window")

    def __init__(self, window: int = 60) -> None:
        self.window = window
        self._ring = [0] * window
        self._second = 0

    def add(self, at: float, n: int = 1) -> None:
        """`n` events at `at` (the core's clock)."""
        second = int(at)
        if second != self._second:
            self._advance(second)
        self._ring[second % self.window] += n

    def per_second(self, now: float) -> float:
        self._advance(int(now))
        return sum(self._ring) / self.window

    def _advance(self, second: int) -> None:
        if second <= self._second:
            return
        for s in range(self._second + 1, min(second, self._second + self.window) + 1):
            self._ring[s % self.window] = 0
        self._second = second
