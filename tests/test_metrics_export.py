"""bybit_hybrid.metrics: the Prometheus collector's exposition, read back with prometheus_client's own parser.

Hand-made `Metrics`/`Health` give exact expectations; a Simulation's core checks the collector over a real
one; `demo --metrics-port` is scraped over HTTP on 127.0.0.1 while it runs; importing the package must not
pull prometheus_client in.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from bybit_hybrid.metrics import ExchangeCollector, HybridCollector, register
from bybit_hybrid.server import ServedExchange
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bybit_hybrid_core import (
    Config,
    Credentials,
    Endpoints,
    Health,
    HealthReason,
    HybridCore,
    Latency,
    Link,
    LinkMetrics,
    Metrics,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Family name -> type, and (sample name, labels) -> value, as prometheus_client's parser reads them."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return types, samples


def scrape(collector: Collector) -> tuple[dict[str, str], Samples]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return parse(generate_latest(registry).decode())


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


LATENCY = Latency(
    count=16,
    sum=2.5,
    bounds=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
    counts=(1, 2, 3, 4, 5, 0, 1),  # the last: above 1 s
    p50_ms=100.0,
    p95_ms=500.0,
    p99_ms=1000.0,
)
METRICS = Metrics(
    at=100.0,
    links=(
        LinkMetrics(
            link=Link.LINEAR,
            state="LIVE",
            uptime=95.5,
            live_for=40.25,
            dials=3,
            reconnects=2,
            downs=2,
            messages=1234,
            problems=1,
            subscription_failures_1h=4,
            last_message_age=0.125,
            ping_rtt=0.03,
        ),
        LinkMetrics(
            link=Link.PRIVATE,
            state="BACKOFF",
            uptime=12.0,
            live_for=None,
            dials=7,
            reconnects=6,
            downs=6,
            messages=20,
            problems=0,
            subscription_failures_1h=0,
            last_message_age=None,
            ping_rtt=None,
        ),
    ),
    events={"PositionUpdate": 900, "LinkDown": 8, "TickerUpdate": 300},
    events_per_second=12.5,
    window=60.0,
    problems=1,
    subscription_failures_1h=4,
    latency=LATENCY,
    clock_offset_ms=-250.0,
    open_positions=3,
    positions_with_ticker=2,
)
HEALTH = Health(
    verdict="critical",
    reasons=(
        HealthReason(
            rule="link_down_critical", level="critical", detail="private not LIVE for 121 s", since=9
        ),
        HealthReason(rule="latency_warning", level="warning", detail="p95 500 ms", since=50.0),
    ),
    since=9.0,
)


def test_every_value_of_a_hand_made_snapshot_is_exposed_exactly() -> None:
    types, s = scrape(HybridCollector(lambda: (METRICS, HEALTH)))
    assert one(s, "bybit_hybrid_collector_up") == 1
    # per link
    assert one(s, "bybit_hybrid_link_up", link="linear") == 1
    assert one(s, "bybit_hybrid_link_up", link="private") == 0
    assert one(s, "bybit_hybrid_link_uptime_seconds_total", link="linear") == 95.5
    assert one(s, "bybit_hybrid_link_uptime_seconds_total", link="private") == 12.0
    assert one(s, "bybit_hybrid_link_live_for_seconds", link="linear") == 40.25
    assert ("bybit_hybrid_link_live_for_seconds", frozenset({("link", "private")})) not in s
    assert one(s, "bybit_hybrid_link_dials_total", link="private") == 7
    assert one(s, "bybit_hybrid_link_reconnects_total", link="linear") == 2
    assert one(s, "bybit_hybrid_link_reconnects_total", link="private") == 6
    assert one(s, "bybit_hybrid_link_downs_total", link="private") == 6
    assert one(s, "bybit_hybrid_link_messages_total", link="linear") == 1234
    assert one(s, "bybit_hybrid_link_problems_total", link="linear") == 1
    assert one(s, "bybit_hybrid_link_subscription_failures_last_hour", link="linear") == 4
    assert one(s, "bybit_hybrid_link_last_message_age_seconds", link="linear") == 0.125
    assert one(s, "bybit_hybrid_link_ping_rtt_seconds", link="linear") == 0.03
    # None is "no sample", never a made-up 0
    assert not [
        k for k in s if k[0].endswith(("_age_seconds", "_rtt_seconds")) and ("link", "private") in k[1]
    ]
    # core-wide
    assert one(s, "bybit_hybrid_events_total", type="PositionUpdate") == 900
    assert one(s, "bybit_hybrid_events_total", type="LinkDown") == 8
    assert one(s, "bybit_hybrid_events_per_second") == 12.5
    assert one(s, "bybit_hybrid_events_window_seconds") == 60.0
    assert one(s, "bybit_hybrid_problems_total") == 1
    assert one(s, "bybit_hybrid_subscription_failures_last_hour") == 4
    assert one(s, "bybit_hybrid_clock_offset_seconds") == -0.25
    assert one(s, "bybit_hybrid_open_positions") == 3
    assert one(s, "bybit_hybrid_positions_with_ticker") == 2
    # health
    assert one(s, "bybit_hybrid_health_verdict") == 2
    assert one(s, "bybit_hybrid_health_reason", rule="link_down_critical", level="critical") == 1
    assert one(s, "bybit_hybrid_health_reason", rule="latency_warning", level="warning") == 1
    assert len([k for k in s if k[0] == "bybit_hybrid_health_reason"]) == 2
    # types: counters are `_total`, the rest gauges, latency a histogram
    assert types["bybit_hybrid_link_reconnects"] == "counter"
    assert types["bybit_hybrid_link_uptime_seconds"] == "counter"
    assert types["bybit_hybrid_events"] == "counter"
    assert types["bybit_hybrid_link_up"] == types["bybit_hybrid_health_verdict"] == "gauge"
    assert types["bybit_hybrid_latency_seconds"] == "histogram"
    assert all(name.startswith("bybit_hybrid_") for name in types)


def test_latency_is_a_real_histogram_with_cumulative_buckets() -> None:
    _, s = scrape(HybridCollector(lambda: (METRICS, HEALTH)))
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in s.items()
        if name == "bybit_hybrid_latency_seconds_bucket"
    }
    assert buckets == {
        "0.005": 1, "0.01": 3, "0.05": 6, "0.1": 10, "0.5": 15, "1.0": 15, "+Inf": 16,
    }  # fmt: skip
    assert one(s, "bybit_hybrid_latency_seconds_count") == 16 == LATENCY.count
    assert one(s, "bybit_hybrid_latency_seconds_sum") == 2.5


def test_no_samples_yet_and_an_ok_verdict() -> None:
    empty = Latency(
        count=0, sum=0.0, bounds=(0.1, 1.0), counts=(0, 0, 0), p50_ms=None, p95_ms=None, p99_ms=None
    )
    metrics = Metrics(
        at=0.0, links=(), events={}, events_per_second=0.0, window=60.0, problems=0,
        subscription_failures_1h=0, latency=empty, clock_offset_ms=None, open_positions=0,
        positions_with_ticker=0,
    )  # fmt: skip
    _, s = scrape(HybridCollector(lambda: (metrics, Health(verdict="ok", reasons=(), since=0.0))))
    assert one(s, "bybit_hybrid_health_verdict") == 0
    assert one(s, "bybit_hybrid_latency_seconds_bucket", le="+Inf") == 0
    assert not [k for k in s if k[0] in ("bybit_hybrid_clock_offset_seconds", "bybit_hybrid_health_reason")]


def test_a_failing_source_is_collector_up_0_not_a_failed_scrape() -> None:
    def broken() -> tuple[Metrics, Health]:
        raise TimeoutError("the stream's loop did not answer")

    _, s = scrape(HybridCollector(broken))
    assert s == {("bybit_hybrid_collector_up", frozenset()): 0}


def test_register_finds_the_core_and_needs_no_started_stream() -> None:
    registry = CollectorRegistry()  # auto_describe, like prometheus_client's default registry
    core = HybridCore(Config(categories=("linear",)))
    register(core, registry)  # registering must not take a snapshot
    with pytest.raises(TypeError, match="cannot find a HybridCore"):
        register(object(), registry)


def test_register_a_served_exchange_exposes_its_counters() -> None:
    with ServedExchange(tls=False) as served:
        registry = CollectorRegistry(auto_describe=False)
        assert isinstance(register(served, registry), ExchangeCollector)
        served.call(lambda ex: ex.violations.append("a client broke a rule"))
        types, s = parse(generate_latest(registry).decode())
    assert one(s, "bybit_hybrid_sim_violations_total") == 1
    assert one(s, "bybit_hybrid_sim_accepted_total") == 0
    assert one(s, "bybit_hybrid_sim_rest_requests_total") == 0
    assert types["bybit_hybrid_sim_connections"] == "gauge"


@pytest.mark.skipif(not hasattr(HybridCore, "metrics"), reason="HybridCore.metrics() has not landed yet")
def test_over_a_real_core_in_a_simulation() -> None:
    from bybit_hybrid_core.testing import Simulation

    config = Config(
        categories=("linear",),
        credentials=Credentials("test-key", "test-secret"),
        endpoints=Endpoints.custom("ws://fake.bybit"),
    )
    sim = Simulation(config, seed=3)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(5.0)
    register_registry = CollectorRegistry(auto_describe=False)
    register(sim.core, register_registry)
    types, s = parse(generate_latest(register_registry).decode())
    metrics, health = sim.core.metrics(), sim.core.health()  # the virtual clock stood still meanwhile
    assert one(s, "bybit_hybrid_collector_up") == 1
    for link in metrics.links:
        assert one(s, "bybit_hybrid_link_messages_total", link=str(link.link)) == link.messages
        assert one(s, "bybit_hybrid_link_up", link=str(link.link)) == (link.state == "LIVE")
    assert one(s, "bybit_hybrid_link_up", link="linear") == 1
    assert one(s, "bybit_hybrid_link_up", link="private") == 1
    assert one(s, "bybit_hybrid_open_positions") == metrics.open_positions == 1
    assert one(s, "bybit_hybrid_positions_with_ticker") == metrics.positions_with_ticker
    assert sum(v for k, v in s.items() if k[0] == "bybit_hybrid_events_total") == sum(metrics.events.values())
    assert one(s, "bybit_hybrid_latency_seconds_count") == metrics.latency.count
    assert one(s, "bybit_hybrid_health_verdict") == {"ok": 0, "warning": 1, "critical": 2}[health.verdict]
    assert types["bybit_hybrid_latency_seconds"] == "histogram"


def test_importing_the_package_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, bybit_hybrid, bybit_hybrid_core, bybit_hybrid.asyncio, bybit_hybrid.threaded, "
        "bybit_hybrid.bot, bybit_hybrid.server, bybit_hybrid.cli, bybit_hybrid_core.testing; "
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_without_prometheus_client_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "try:\n    import bybit_hybrid.metrics\nexcept ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'bybit-hybrid[metrics]'" in out


DEMO = [sys.executable, "-m", "bybit_hybrid.cli", "demo"]


def test_demo_serves_parseable_metrics_on_loopback_while_it_runs(tmp_path: Path) -> None:
    err = tmp_path / "stderr.txt"
    with err.open("w") as err_file:
        proc = subprocess.Popen(
            [*DEMO, "--duration", "8", "--json", "--metrics-port", "0"],
            stdout=subprocess.DEVNULL, stderr=err_file,
        )  # fmt: skip
        try:
            url, deadline = None, time.monotonic() + 20
            while url is None and time.monotonic() < deadline and proc.poll() is None:
                found = re.search(r"^metrics: (http://127\.0\.0\.1:\d+/metrics)$", err.read_text(), re.M)
                url = found[1] if found else None
                time.sleep(0.05)
            assert url is not None, err.read_text()
            # Scrape until the linear link is LIVE with messages in (the script drops links now and then).
            s: Samples = {}
            linear = frozenset({("link", "linear")})
            while time.monotonic() < deadline:
                with urllib.request.urlopen(url, timeout=5) as response:
                    types, s = parse(response.read().decode())
                if s.get(("bybit_hybrid_link_up", linear)) == 1 and s.get(
                    ("bybit_hybrid_link_messages_total", linear), 0
                ):
                    break
                time.sleep(0.2)
            assert one(s, "bybit_hybrid_collector_up") == 1
            assert one(s, "bybit_hybrid_link_up", link="linear") == 1
            assert one(s, "bybit_hybrid_link_messages_total", link="linear") > 0
            assert types["bybit_hybrid_latency_seconds"] == "histogram"
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


# ------------------------------------------------------------------------------ divergence and rollout


def test_divergence_and_rollout_are_counters_and_gauges_per_symbol() -> None:
    import msgspec

    from bybit_hybrid_core._health import DivergenceMetrics, RolloutStatus, SymbolDivergence

    divergence = DivergenceMetrics(
        comparisons=12, divergences=3, max_pct=Decimal("4.762"), threshold_pct=Decimal("0.5"),
        by_symbol={
            "linear:BTCUSDT": SymbolDivergence(
                comparisons=7, divergences=3, max_pct=Decimal("4.762"), last_pct=Decimal("4.75")
            ),
            "inverse:BTCUSD": SymbolDivergence(
                comparisons=5, divergences=0, max_pct=Decimal("0.02"), last_pct=Decimal(0)
            ),
        },
    )  # fmt: skip
    rollout = RolloutStatus(
        mode="cutover", share=0.25, rest_polling=False, positions_fallback=True, marks_fallback=("ETHUSDT",),
        rolled_back_for=12.5, rollback_reasons=("divergences_critical",), rest_requests=42, clock_failures=2,
    )  # fmt: skip
    metrics = msgspec.structs.replace(METRICS, divergence=divergence, rollout=rollout)
    types, s = scrape(HybridCollector(lambda: (metrics, HEALTH)))
    btc, inv = {"category": "linear", "symbol": "BTCUSDT"}, {"category": "inverse", "symbol": "BTCUSD"}
    assert one(s, "bybit_hybrid_mark_comparisons_total", **btc) == 7
    assert one(s, "bybit_hybrid_mark_comparisons_total", **inv) == 5
    assert one(s, "bybit_hybrid_mark_divergences_total", **btc) == 3
    assert one(s, "bybit_hybrid_mark_divergences_total", **inv) == 0
    assert one(s, "bybit_hybrid_mark_divergence_max_ratio", **btc) == pytest.approx(0.04762)
    assert one(s, "bybit_hybrid_mark_divergence_last_ratio", **btc) == pytest.approx(0.0475)
    assert one(s, "bybit_hybrid_mark_divergence_max_ratio", **inv) == pytest.approx(0.0002)
    assert one(s, "bybit_hybrid_mark_divergence_threshold_ratio") == pytest.approx(0.005)
    modes = {dict(k[1])["mode"]: v for k, v in s.items() if k[0] == "bybit_hybrid_rollout_mode"}
    assert modes == {"rest": 0, "canary": 0, "parallel": 0, "cutover": 1, "production": 0}
    assert one(s, "bybit_hybrid_rollout_share") == 0.25
    assert one(s, "bybit_hybrid_rollout_rest_polling") == 0
    assert one(s, "bybit_hybrid_rollout_rolled_back") == 1
    assert one(s, "bybit_hybrid_rollout_rolled_back_seconds") == 12.5
    assert one(s, "bybit_hybrid_rollout_positions_fallback") == 1
    assert one(s, "bybit_hybrid_rollout_marks_fallback_symbols") == 1
    assert one(s, "bybit_hybrid_rollout_rest_requests_total") == 42
    assert one(s, "bybit_hybrid_rollout_clock_failures_total") == 2
    for name in ("mark_comparisons", "mark_divergences", "rollout_rest_requests", "rollout_clock_failures"):
        assert types[f"bybit_hybrid_{name}"] == "counter"
    for name in (
        "mark_divergence_max_ratio",
        "mark_divergence_last_ratio",
        "rollout_mode",
        "rollout_rolled_back",
    ):
        assert types[f"bybit_hybrid_{name}"] == "gauge"


def test_no_comparison_and_no_rollout_status_give_no_made_up_samples() -> None:
    _, s = scrape(HybridCollector(lambda: (METRICS, HEALTH)))  # the defaults: nothing compared, rollout None
    assert not [k for k in s if k[0].startswith(("bybit_hybrid_mark_comparisons", "bybit_hybrid_rollout_"))]
    assert one(s, "bybit_hybrid_mark_divergence_threshold_ratio") == pytest.approx(0.01)
    rolled_back = with_rollout(rolled_back_for=None)
    _, s = scrape(HybridCollector(lambda: (rolled_back, HEALTH)))
    assert one(s, "bybit_hybrid_rollout_rolled_back") == 0
    assert ("bybit_hybrid_rollout_rolled_back_seconds", frozenset()) not in s


def with_rollout(**changes: object) -> Metrics:
    import msgspec

    from bybit_hybrid_core._health import RolloutStatus

    fields: dict[str, object] = {
        "mode": "parallel", "share": 1.0, "rest_polling": True, "positions_fallback": False,
        "marks_fallback": (), "rolled_back_for": None, "rollback_reasons": (), "rest_requests": 0,
    }  # fmt: skip
    fields.update(changes)
    return msgspec.structs.replace(METRICS, rollout=RolloutStatus(**fields))  # type: ignore[arg-type]


def test_a_diverging_rest_mark_in_a_simulation_shows_in_the_scrape() -> None:
    from bybit_hybrid_core import Mode, Rollout
    from bybit_hybrid_core.testing import DEFAULT_START_MS, Simulation, Venue

    config = Config(
        credentials=Credentials("test-key", "test-secret"),
        endpoints=Endpoints.custom("ws://fake.bybit"),
        mode=Mode.PRODUCTION,
        rollout=Rollout(compare_interval=5.0),
    )
    sim = Simulation(config, seed=3, latency=0.01, venue=Venue(3, DEFAULT_START_MS, interval=0.5))
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.exchange.rest_mark_divergence("BTCUSDT", 5)
    sim.advance(21.0)
    registry = CollectorRegistry(auto_describe=False)
    register(sim.core, registry)
    _, s = parse(generate_latest(registry).decode())
    d = sim.core.metrics().divergence.by_symbol["linear:BTCUSDT"]
    btc = {"category": "linear", "symbol": "BTCUSDT"}
    assert one(s, "bybit_hybrid_mark_comparisons_total", **btc) == d.comparisons > 0
    assert one(s, "bybit_hybrid_mark_divergences_total", **btc) == d.divergences == d.comparisons
    assert 0.045 < one(s, "bybit_hybrid_mark_divergence_max_ratio", **btc) < 0.051
    assert one(s, "bybit_hybrid_rollout_mode", mode="production") == 1
    assert one(s, "bybit_hybrid_rollout_rest_requests_total") > 0
