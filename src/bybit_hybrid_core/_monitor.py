"""The health rules (`HealthRules`), evaluated from what the core feeds them: verdicts with reasons.

Sans-IO like the rest: driven by the events the core emits and by `now`; `deadline()` is the earliest moment a
time-based rule can start firing, so each fires exactly at its threshold.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, NamedTuple

import msgspec

from ._config import HealthRules, Link
from ._events import (
    Authenticated,
    AuthFailed,
    Event,
    LinkDown,
    LinkUp,
    MarksCompared,
    Position,
    PositionClosed,
    PositionKey,
    PositionsSynced,
    PositionUpdate,
    SnapshotFailed,
    SubscriptionFailed,
)
from ._health import (
    EventRate,
    Health,
    HealthReason,
    LatencyRecorder,
    LinkCounters,
    LinkMetrics,
    Metrics,
    Verdict,
)

__all__ = ["HEALTH_EVENTS", "STREAM_HEALTH_EVENTS", "HealthMonitor", "LinkView", "metrics"]

# Events that can change a verdict at once (the others only move time-based rules, which have deadlines).
_WATCHED: frozenset[type] = frozenset(
    {
        SnapshotFailed,
        PositionsSynced,
        PositionClosed,
        LinkUp,
        LinkDown,
        AuthFailed,
        Authenticated,
        SubscriptionFailed,
        MarksCompared,
    }
)
HEALTH_EVENTS: frozenset[type] = _WATCHED | {PositionUpdate}
"""The events `HealthMonitor.saw` looks at: the core skips the call for every other (market data) event."""
STREAM_HEALTH_EVENTS: frozenset[type] = frozenset({PositionUpdate, PositionClosed, PositionsSynced})
"""Of those, the ones the monitor takes from the stream pipeline itself (whatever the rollout delivers):
the stream is what health watches, in canary as in production."""


class LinkView(NamedTuple):
    """What the health rules and the metrics read of one link."""

    link: Link
    state: str
    counters: LinkCounters
    auth_refusals: int
    confirmed: frozenset[str]


class HealthMonitor:
    """The rules of `HealthRules`, evaluated from what the core tells it (sans-IO, driven by `now`).

    The core feeds it events (`saw`) and asks `evaluate(now, links)` when something relevant changed or
    when `deadline()` comes: the earliest moment a time-based rule can start firing (a link down for 30 s,
    no data for 5 min, a refusal leaving the hour), so each rule fires exactly at its threshold. Latency is
    looked at every `_LOOK` seconds while anything is live.
    """

    _LOOK = 10.0

    def __init__(self, rules: HealthRules, latency: LatencyRecorder, now: float = 0.0) -> None:
        self.rules = rules
        self.latency = latency
        self.health = Health(verdict="ok", reasons=(), since=now)
        self.dirty = True
        self.last_data_at = now
        self.snapshot_failures = 0  # in a row, until a PositionsSynced
        self.dark: dict[tuple[str, str, int], float] = {}  # open position key -> stale since
        self.diverged: deque[tuple[float, str]] = deque()  # (when, "category symbol") of each divergence
        self._latency_high_since: float | None = None
        self._deadline: float | None = now

    def saw(self, event: Event) -> None:
        """Keep what the rules need from one emitted event (cheap: most events fall through at once)."""
        kind = type(event)
        if kind is PositionUpdate:
            key = (event.category, event.symbol, event.position_idx)  # type: ignore[attr-defined]
            # dark: stale, or priced by the REST fallback (its ticker does not speak)
            if event.stale or event.source == "rest":  # type: ignore[attr-defined]
                if key not in self.dark:
                    self.dark[key] = event.at
                    self.dirty = True
            elif self.dark and self.dark.pop(key, None) is not None:
                self.dirty = True
        elif kind in _WATCHED:
            if kind is SnapshotFailed:
                self.snapshot_failures += 1
            elif kind is PositionsSynced:
                self.snapshot_failures = 0
            elif kind is PositionClosed:
                self.dark.pop(event.position.key, None)  # type: ignore[attr-defined]
            elif kind is MarksCompared:
                if not event.diverged:  # type: ignore[attr-defined]
                    return
                self.diverged.append((event.at, f"{event.category} {event.symbol}"))  # type: ignore[attr-defined]
            self.dirty = True

    def deadline(self) -> float | None:
        return self._deadline

    def evaluate(self, now: float, links: list[LinkView]) -> Health | None:
        """Apply every rule; the new `Health` when the set of firing reasons changed, else None."""
        r = self.rules
        self.dirty = False
        reasons: list[HealthReason] = []
        wakes: list[float] = []

        def rule(
            name: str, level: Literal["warning", "critical"], detail: str, since: float, after: float
        ) -> None:
            if now >= since + after:
                reasons.append(HealthReason(rule=name, level=level, detail=detail, since=since + after))
            else:
                wakes.append(since + after)

        downs = [v.counters.down_since for v in links]
        if links and all(d is not None for d in downs):
            since = max(d for d in downs if d is not None)
            rule("links_down_critical", "critical", "every link is down", since, r.links_down_critical)
        for v in links:
            if v.counters.down_since is not None:
                rule(
                    "link_down_warning",
                    "warning",
                    f"{v.link.value} not LIVE",
                    v.counters.down_since,
                    r.link_down_warning,
                )
            if v.auth_refusals >= r.auth_refusals_critical:
                reasons.append(
                    HealthReason(
                        rule="auth_refusals_critical",
                        level="critical",
                        detail=f"{v.link.value}: auth refused {r.auth_refusals_critical}+ times in a row",
                        since=now,
                    )
                )
        rule(
            "no_events_critical",
            "critical",
            "no market or account data",
            self.last_data_at,
            r.no_events_critical,
        )
        refused = 0
        for v in links:
            window = v.counters.refused_at
            while window and window[0] <= now - r.failed_subscriptions_window:
                window.popleft()
            refused += len(window)
            if window:
                wakes.append(window[0] + r.failed_subscriptions_window)
        if refused > r.failed_subscriptions_critical:
            reasons.append(
                HealthReason(
                    rule="failed_subscriptions_critical",
                    level="critical",
                    detail=f"more than {r.failed_subscriptions_critical} topics refused within the window",
                    since=now,
                )
            )
        if self.snapshot_failures >= r.snapshot_failures_critical:
            reasons.append(
                HealthReason(
                    rule="snapshot_failures_critical",
                    level="critical",
                    detail=f"the REST snapshot failed {r.snapshot_failures_critical}+ times in a row",
                    since=now,
                )
            )
        diverged = self.diverged
        # `now >= t + window`, the very sum the wake is set at (`t <= now - window` can miss it by a rounding)
        while diverged and now >= diverged[0][0] + r.divergence_window:
            diverged.popleft()
        if diverged:
            wakes.append(diverged[0][0] + r.divergence_window)
        if len(diverged) >= r.divergences_critical:
            symbols = ", ".join(sorted({s for _, s in diverged}))
            reasons.append(
                HealthReason(
                    rule="divergences_critical",
                    level="critical",
                    detail=f"REST marks diverge from the stream's: {symbols}",
                    since=now,
                )
            )
        for (category, symbol, idx), since in sorted(self.dark.items()):
            rule(
                "position_dark_warning",
                "warning",
                f"{category} {symbol} #{idx}: mark stale",
                since,
                r.position_dark_warning,
            )
        p99 = self.latency.recent_p99_ms()
        if p99 is not None and p99 > r.latency_p99_warning_ms:
            if self._latency_high_since is None:
                self._latency_high_since = now
            rule(
                "latency_p99_warning_ms",
                "warning",
                f"p99 latency {p99:g} ms",
                self._latency_high_since,
                r.latency_warning_for,
            )
        else:
            self._latency_high_since = None
        if any(v.state == "LIVE" for v in links):
            wakes.append(now + self._LOOK)
        self._deadline = min(wakes) if wakes else None
        return self._change(now, reasons)

    def _change(self, now: float, reasons: list[HealthReason]) -> Health | None:
        # A condition that goes on firing keeps the `since` of when it started (rules without a threshold in
        # time, like a count past its limit, are stamped `now` each time they are looked at).
        started = {(x.rule, x.detail): x.since for x in self.health.reasons}
        reasons = [
            x
            if (x.rule, x.detail) not in started
            else msgspec.structs.replace(x, since=started[(x.rule, x.detail)])
            for x in reasons
        ]
        old = {(x.rule, x.detail, x.since) for x in self.health.reasons}
        new = {(x.rule, x.detail, x.since) for x in reasons}
        if old == new:
            return None
        verdict: Verdict = (
            "critical" if any(x.level == "critical" for x in reasons) else "warning" if reasons else "ok"
        )
        since = now if verdict != self.health.verdict else self.health.since
        self.health = Health(verdict=verdict, reasons=tuple(reasons), since=since)
        return self.health


def metrics(
    now: float,
    links: list[LinkView],
    counts: dict[type, int],
    rate: EventRate,
    latency: LatencyRecorder,
    positions: dict[PositionKey, Position],
    window: float,
) -> Metrics:
    """The `Metrics` snapshot from the core's counters (only when asked: nothing here runs per message)."""
    per_link = []
    for v in links:
        c = v.counters
        live_for = None if c.live_since is None else now - c.live_since
        recent = sum(1 for t in c.refused_at if t > now - window)
        per_link.append(
            LinkMetrics(
                link=v.link,
                state=v.state,
                uptime=c.uptime + (live_for or 0.0),
                live_for=live_for,
                dials=c.dials,
                reconnects=c.reconnects,
                downs=c.downs,
                messages=c.messages,
                problems=c.problems,
                subscription_failures_1h=recent,
                last_message_age=c.message_age(now),
                ping_rtt=c.last_pong_rtt,
            )
        )
    live = {topic for v in links if v.state == "LIVE" for topic in v.confirmed}
    covered = sum(
        1 for key in positions if f"tickers.{key[1]}" in live and _category_live(links, key[0], key[1])
    )
    return Metrics(
        at=now,
        links=tuple(per_link),
        events={kind.__name__: n for kind, n in sorted(counts.items(), key=lambda kv: kv[0].__name__)},
        events_per_second=rate.per_second(now),
        window=float(rate.window),
        problems=sum(m.problems for m in per_link),
        subscription_failures_1h=sum(m.subscription_failures_1h for m in per_link),
        latency=latency.snapshot(),
        clock_offset_ms=latency.offset_ms,
        open_positions=len(positions),
        positions_with_ticker=covered,
    )


def _category_live(links: list[LinkView], category: str, symbol: str) -> bool:
    topic = f"tickers.{symbol}"
    return any(v.state == "LIVE" and v.link.category == category and topic in v.confirmed for v in links)
