"""Health verdicts and metrics (`HybridCore.health()`, `metrics()`, `HealthChanged`): each rule fires exactly
at its threshold and clears when its condition ends; the metrics match counts kept here; latency under a
skewed clock is the network's delay, not the skew. `now` is driven by hand or by the Simulation."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bybit_hybrid_core import (
    AuthFailed,
    Config,
    Credentials,
    Endpoints,
    Event,
    HealthChanged,
    HealthRules,
    Link,
    MarksCompared,
    PositionUpdate,
    Rollout,
    SnapshotFailed,
    Timings,
)
from bybit_hybrid_core.testing import DEFAULT_START_MS, Simulation, Venue
from helpers import Session

CREDS = Credentials("test-key", "test-secret")
QUIET = Timings(topic_quiet_after=1e9, silent_link_after=1e9)  # the hand-driven server pushes no tickers


def rules_of(event: Event) -> set[str]:
    assert isinstance(event, HealthChanged)
    return {r.rule for r in event.health.reasons}


def changes(session: Session) -> list[HealthChanged]:
    return session.of(HealthChanged)


def test_a_link_down_warns_at_30_s_and_clears_when_it_is_back() -> None:
    session = Session(Config(timings=QUIET))
    session.start()
    session.advance(29.999)
    assert session.core.health().verdict == "ok" and not changes(session)
    session.advance(0.001)
    (warned,) = changes(session)
    assert warned.at == 30.0 and warned.health.verdict == "warning"
    assert rules_of(warned) == {"link_down_warning"}
    (reason,) = warned.health.reasons
    assert reason.since == 30.0 and "linear" in reason.detail
    session.up(Link.LINEAR)
    cleared = changes(session)[-1]
    assert (
        cleared.health.verdict == "ok" and cleared.at == session.now and session.core.health().reasons == ()
    )


def test_every_link_down_and_no_data_are_critical_at_five_minutes() -> None:
    session = Session(Config(credentials=CREDS, timings=QUIET))
    session.start()  # nothing ever connects
    session.advance(299.9)
    assert session.core.health().verdict == "warning"
    session.advance(0.1)
    critical = changes(session)[-1]
    assert critical.at == 300.0 and critical.health.verdict == "critical"
    assert {"links_down_critical", "no_events_critical", "link_down_warning"} <= rules_of(critical)


def test_more_than_ten_refusals_within_an_hour_are_critical_until_they_age_out() -> None:
    # no market data flows in this hand-driven session: keep that rule out of the way
    session = Session(Config(timings=QUIET, health=HealthRules(no_events_critical=1e9)), auto_connect=True)
    session.start()
    bad = [f"orderbook.50.NOPE{i}USDT" for i in range(11)]
    session.bad_topics.update(bad)
    for topic in bad[:10]:
        session.core.subscribe(topic)
    session.pump()
    assert session.core.health().verdict == "ok"  # ten is the limit, not yet past it
    session.advance(100.0)
    session.core.subscribe(bad[10])
    session.pump()
    critical = changes(session)[-1]
    assert critical.health.verdict == "critical" and rules_of(critical) == {"failed_subscriptions_critical"}
    assert session.core.metrics().subscription_failures_1h == 11
    session.advance(3500.0 - 0.01)  # the first ten were refused at t=0: they leave the hour at 3600
    assert session.core.health().verdict == "critical"
    session.advance(0.01)
    assert changes(session)[-1].health.verdict == "ok" and changes(session)[-1].at == 3600.0


def test_an_auth_refusal_that_persists_is_critical() -> None:
    session = Session(Config(credentials=CREDS, categories=(), timings=QUIET))
    session.auth_ok = False
    session.start()
    session.up(Link.PRIVATE)
    for _ in range(2):
        session.advance(session.of(AuthFailed)[-1].retry_in)
        session.up(Link.PRIVATE)
    third = session.of(AuthFailed)[-1]
    critical = [c for c in changes(session) if "auth_refusals_critical" in rules_of(c)]
    assert critical and critical[0].at == third.at and critical[0].health.verdict == "critical"
    assert len([c for c in changes(session) if "auth_refusals_critical" in rules_of(c)]) >= 1
    session.auth_ok = True
    session.advance(session.of(AuthFailed)[-1].retry_in)
    session.up(Link.PRIVATE)
    assert "auth_refusals_critical" not in {r.rule for r in session.core.health().reasons}


def test_a_snapshot_that_keeps_failing_is_critical_at_the_fifth_failure() -> None:
    session = Session(Config(credentials=CREDS, categories=(), timings=QUIET), auto_connect=True)
    session.start()  # nobody answers the REST requests: each times out and is retried
    session.advance(280.0)
    failures = session.of(SnapshotFailed)
    assert len(failures) >= 5
    first = next(c for c in changes(session) if "snapshot_failures_critical" in rules_of(c))
    assert first.at == failures[4].at


def simulation(seed: int = 3, latency: float = 0.01, **health: Any) -> Simulation:
    config = Config(
        credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"), health=HealthRules(**health)
    )
    venue = Venue(seed, DEFAULT_START_MS, interval=0.5)
    return Simulation(config, seed=seed, latency=latency, venue=venue, publish_interval=0.5)


def test_a_position_whose_mark_stays_stale_warns_after_the_threshold() -> None:
    sim = simulation()
    sim.exchange.fail_subscribe("tickers.ETHUSDT")  # refused until healed: the mark goes stale
    sim.exchange.open_position("ETHUSDT", side="Buy", size="1", price="3500")
    sim.advance(30.0)
    # dark: stale, or priced by REST (the snapshot's own mark, then the marks fallback) without a ticker
    dark = next(e for e in sim.events_of(PositionUpdate) if e.stale or e.source == "rest")  # type: ignore[attr-defined]
    warned = next(e for e in sim.events_of(HealthChanged) if "position_dark_warning" in rules_of(e))
    assert warned.at == dark.at + HealthRules().position_dark_warning
    assert any(e.stale for e in sim.events_of(PositionUpdate))  # type: ignore[attr-defined]
    assert sim.events_of(PositionUpdate)[-1].source == "rest"  # type: ignore[attr-defined]  # the fallback
    metrics = sim.core.metrics()
    assert (metrics.open_positions, metrics.positions_with_ticker) == (1, 0)
    sim.exchange.heal()
    sim.advance(200.0)  # the refused ticker's retry comes round on the same connection
    sim.settle()
    assert "position_dark_warning" not in {r.rule for r in sim.core.health().reasons}
    metrics = sim.core.metrics()
    assert (metrics.open_positions, metrics.positions_with_ticker) == (1, 1)


def test_metrics_count_exactly_what_the_core_emitted() -> None:
    sim = simulation()
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(90.0)
    metrics = sim.core.metrics()
    assert metrics.events == dict(Counter(type(e).__name__ for e in sim.events))
    in_window = [e for e in sim.events if e.at >= int(metrics.at) - metrics.window + 1]
    assert metrics.events_per_second == len(in_window) / metrics.window
    by_link = {m.link: m for m in metrics.links}
    status = sim.core.status()
    assert {link: m.messages for link, m in by_link.items()} == {
        link: s.messages for link, s in status.items()
    }
    assert all(m.state == "LIVE" and 85.0 < m.uptime <= 90.0 for m in by_link.values())
    assert by_link[Link.PRIVATE].ping_rtt is not None


def test_latency_under_a_skewed_clock_is_the_network_delay_not_the_skew() -> None:
    sim = simulation(latency=0.05)
    sim.exchange.clock_skew(3_000)  # the exchange's clock runs 3 s ahead of ours
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(45.0)  # two private pongs: the offset is estimated
    before = sim.core.metrics().latency
    sim.advance(60.0)
    after = sim.core.metrics()
    assert after.clock_offset_ms is not None and abs(after.clock_offset_ms - 3_000) < 20
    recent = [b - a for a, b in zip(before.counts, after.latency.counts, strict=True)]
    assert sum(recent) > 100
    lo, hi = 0.03, 0.075  # 50 ms of network delay falls in the (0.03, 0.05] or (0.05, 0.075] bucket
    inside = sum(
        n for n, upper in zip(recent, (*after.latency.bounds, float("inf")), strict=True) if lo < upper <= hi
    )
    assert inside == sum(recent), recent


def test_p99_latency_above_the_limit_for_five_minutes_warns() -> None:
    sim = simulation(latency=1.2)  # every message takes 1.2 s from the exchange to us
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(60.0)
    assert "latency_p99_warning_ms" not in {r.rule for r in sim.core.health().reasons}
    sim.advance(360.0)
    warned = next(e for e in sim.events_of(HealthChanged) if "latency_p99_warning_ms" in rules_of(e))
    reason = next(r for r in warned.health.reasons if r.rule == "latency_p99_warning_ms")
    # seen high at the first look (every 10 s while live), then for `latency_warning_for` seconds
    assert warned.at - reason.since == 0.0 and 300.0 <= reason.since <= 320.0
    assert sim.core.metrics().latency.p99_ms is not None and sim.core.metrics().latency.p99_ms > 1000.0


def test_marks_diverging_from_rest_make_the_verdict_critical_and_it_clears_with_the_window() -> None:
    rules = HealthRules(divergences_critical=3, divergence_window=120.0)
    config = Config(
        credentials=CREDS,
        endpoints=Endpoints.custom("ws://fake.bybit"),
        health=rules,
        rollout=Rollout(compare_interval=10.0),
    )
    venue = Venue(3, DEFAULT_START_MS, interval=0.5)
    sim = Simulation(config, seed=3, latency=0.01, venue=venue, publish_interval=0.5)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.exchange.rest_mark_divergence("BTCUSDT", 5)
    sim.advance(45.0)  # comparisons at 10, 20, 30, 40 s: the third divergence makes it critical
    compared = [e for e in sim.events if isinstance(e, MarksCompared)]
    assert [e.diverged for e in compared] == [True] * len(compared) and len(compared) >= 3
    critical = next(e for e in sim.events_of(HealthChanged) if "divergences_critical" in rules_of(e))
    assert critical.at == compared[2].at and critical.health.verdict == "critical"  # type: ignore[attr-defined]
    sim.exchange.rest_mark_divergence("BTCUSDT", 0)
    sim.advance(200.0)  # the divergences leave the 120 s window
    assert "divergences_critical" not in {r.rule for r in sim.core.health().reasons}
    assert sim.core.metrics().divergence.divergences == len(compared)
