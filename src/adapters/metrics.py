"""Prometheus metrics for a hybrid stream: a custom collector over the core's `Metrics` and `Health`.

    from bybit_hybrid.metrics import register
    register(stream)                     # any adapter (or a HybridCore, or a ServedExchange); then serve it:
    prometheus_client.start_http_server(9464, addr="127.0.0.1")

`HybridCollector(source)` works with anything that can hand over a snapshot: `source()` returns
`(Metrics, Health)`, e.g. `lambda: (core.metrics(), core.health())`. Each scrape calls it once, so the numbers
of one scrape are of one instant. `register(stream)` builds the source for each adapter shape: the threaded
stream's core lives on its loop thread and is read through `stream.call(...)`; an asyncio stream's core is
read on its event loop when `register` is called from inside that loop. Names and units follow Prometheus'
conventions (`bybit_hybrid_` prefix, `_seconds`, `_total`); docs/operations.md ("Prometheus") lists them with
alerting rules.

This module needs `prometheus_client` (`pip install 'bybit-hybrid[metrics]'`); nothing else in
`bybit_hybrid` or `bybit_hybrid_core` imports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
    from prometheus_client.utils import floatToGoString
except ImportError as exc:  # an optional extra: say how to get it rather than a bare ModuleNotFoundError
    raise ImportError(
        "bybit_hybrid.metrics needs prometheus_client: pip install 'bybit-hybrid[metrics]'",
        name="prometheus_client",
    ) from exc

from bybit_hybrid_core import Health, HybridCore, Latency, Metrics, Mode

__all__ = [
    "PREFIX",
    "VERDICT_LEVELS",
    "ExchangeCollector",
    "HybridCollector",
    "Snapshot",
    "register",
    "serve",
    "snapshot_source",
]

log = logging.getLogger("bybit_hybrid.metrics")

PREFIX = "bybit_hybrid"
VERDICT_LEVELS = {"ok": 0, "warning": 1, "critical": 2}  # bybit_hybrid_health_verdict's values
Snapshot = tuple[Metrics, Health]
_CALL_TIMEOUT = 5.0  # seconds a scrape waits for a loop thread; a stuck loop shows as collector_up 0


def _take(core: HybridCore) -> Snapshot:
    return core.metrics(), core.health()


class HybridCollector(Collector):
    """A prometheus_client collector over `source() -> (Metrics, Health)`.

    When `source` raises (the stream is stopped, its loop does not answer in time), the scrape still
    succeeds with `bybit_hybrid_collector_up 0` and nothing else from this collector, so that one broken
    stream does not fail a registry shared with the application's own metrics.
    """

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        # Empty: registering must not call `source` (the stream may not be started yet); the registry then
        # skips its duplicate-name check for this collector, which is what a custom collector wants.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_collector_up", "1 if the stream's snapshot was taken for this scrape, 0 if it failed."
        )
        try:
            metrics, health = self._source()
        except Exception:
            log.warning("bybit_hybrid metrics: the snapshot failed", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from link_families(metrics)
        yield from core_families(metrics)
        yield latency_family(metrics.latency)
        yield from health_families(health)
        yield from divergence_families(metrics)
        yield from rollout_families(metrics)


def link_families(metrics: Metrics) -> Iterator[Metric]:
    """The per-link families, labelled `link` ("linear", "linear-2", "private", ...)."""

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(f"{PREFIX}_link_{name}", doc, labels=["link"])

    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_link_{name}", doc, labels=["link"])

    up = gauge("up", "1 if the link is LIVE (connected, authenticated where needed, subscribed), else 0.")
    uptime = counter("uptime_seconds", "Seconds the link was LIVE since the core started.")
    live_for = gauge("live_for_seconds", "Seconds since the link last became LIVE (absent: not LIVE).")
    dials = counter("dials", "Connections dialled.")
    reconnects = counter("reconnects", "Dials after the first.")
    downs = counter("downs", "Times the link went down.")
    messages = counter("messages", "Messages received.")
    problems = counter("problems", "Remote protocol problems reported (ProtocolProblem).")
    failures = gauge("subscription_failures_last_hour", "Subscriptions refused within the last hour.")
    age = gauge("last_message_age_seconds", "Seconds since the last message (absent: none yet).")
    rtt = gauge("ping_rtt_seconds", "Round trip of the last JSON ping (absent: none yet).")
    for m in metrics.links:
        link = [str(m.link)]
        up.add_metric(link, 1 if m.state == "LIVE" else 0)
        uptime.add_metric(link, m.uptime)
        if m.live_for is not None:
            live_for.add_metric(link, m.live_for)
        dials.add_metric(link, m.dials)
        reconnects.add_metric(link, m.reconnects)
        downs.add_metric(link, m.downs)
        messages.add_metric(link, m.messages)
        problems.add_metric(link, m.problems)
        failures.add_metric(link, m.subscription_failures_1h)
        if m.last_message_age is not None:  # no sample rather than a fake 0: "never" is not "just now"
            age.add_metric(link, m.last_message_age)
        if m.ping_rtt is not None:
            rtt.add_metric(link, m.ping_rtt)
    yield from (up, uptime, live_for, dials, reconnects, downs, messages, problems, failures, age, rtt)


def core_families(metrics: Metrics) -> Iterator[Metric]:
    """Events, problems, clock offset and the position gauges of the whole core."""
    events = CounterMetricFamily(f"{PREFIX}_events", "Events emitted since start, by type.", labels=["type"])
    for name, n in sorted(metrics.events.items()):
        events.add_metric([name], n)
    yield events
    rate = GaugeMetricFamily(
        f"{PREFIX}_events_per_second", "Events per second over the core's window (see _window_seconds)."
    )
    rate.add_metric([], metrics.events_per_second)
    yield rate
    yield GaugeMetricFamily(
        f"{PREFIX}_events_window_seconds", "The window events_per_second is taken over.", metrics.window
    )
    yield CounterMetricFamily(
        f"{PREFIX}_problems", "Remote protocol problems reported on every link.", metrics.problems
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_subscription_failures_last_hour",
        "Subscriptions refused within the last hour, every link.",
        metrics.subscription_failures_1h,
    )
    offset = GaugeMetricFamily(
        f"{PREFIX}_clock_offset_seconds",
        "The exchange's clock minus ours (absent before an estimate); latency is corrected by it.",
    )
    if metrics.clock_offset_ms is not None:
        offset.add_metric([], metrics.clock_offset_ms / 1000)
    yield offset
    yield GaugeMetricFamily(f"{PREFIX}_open_positions", "Open positions.", metrics.open_positions)
    yield GaugeMetricFamily(
        f"{PREFIX}_positions_with_ticker",
        "Open positions whose ticker is confirmed on a LIVE link (healthy: equal to open_positions).",
        metrics.positions_with_ticker,
    )


def latency_family(latency: Latency) -> HistogramMetricFamily:
    """`Metrics.latency` as a Prometheus histogram: cumulative buckets, `+Inf` = count, sum in seconds."""
    family = HistogramMetricFamily(
        f"{PREFIX}_latency_seconds",
        "Exchange timestamp to delivered message, corrected by the clock offset.",
        labels=[],
    )
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip(latency.bounds, latency.counts, strict=False):  # counts has one more: above the last
        running += n
        buckets.append((_le(bound), running))
    buckets.append(("+Inf", latency.count))
    family.add_metric([], buckets, latency.sum)
    return family


def _le(bound: float) -> str:
    # The `le` label as prometheus_client's own histograms write it (Go's float format: "0.005", "1.0").
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]  # unannotated upstream
    return text


def health_families(health: Health) -> Iterator[Metric]:
    """The verdict as a number, and one sample per firing rule."""
    yield GaugeMetricFamily(
        f"{PREFIX}_health_verdict", "0 ok, 1 warning, 2 critical.", VERDICT_LEVELS[health.verdict]
    )
    reasons = GaugeMetricFamily(
        f"{PREFIX}_health_reason",
        "1 for each rule firing now (HealthRules field names).",
        labels=["rule", "level"],
    )
    for reason in health.reasons:
        reasons.add_metric([reason.rule, reason.level], 1)
    yield reasons


def divergence_families(metrics: Metrics) -> Iterator[Metric]:
    """REST marks compared with the stream's (`Metrics.divergence`), per `category` and `symbol`; the
    percentages as ratios (Prometheus' base unit: 0.05 is 5 %)."""
    d = metrics.divergence
    labels = ["category", "symbol"]
    comparisons = CounterMetricFamily(
        f"{PREFIX}_mark_comparisons",
        "REST marks compared with the stream's mark at that moment.",
        labels=labels,
    )
    divergences = CounterMetricFamily(
        f"{PREFIX}_mark_divergences",
        "Comparisons whose marks differ by more than the threshold (mark_divergence_threshold_ratio).",
        labels=labels,
    )
    worst = GaugeMetricFamily(
        f"{PREFIX}_mark_divergence_max_ratio",
        "The largest |stream - REST| / REST seen since start (0.01 is 1 %).",
        labels=labels,
    )
    last = GaugeMetricFamily(
        f"{PREFIX}_mark_divergence_last_ratio",
        "|stream - REST| / REST of the last comparison.",
        labels=labels,
    )
    for key, s in sorted(d.by_symbol.items()):
        category, _, symbol = key.partition(":")
        where = [category, symbol] if symbol else ["", category]
        comparisons.add_metric(where, s.comparisons)
        divergences.add_metric(where, s.divergences)
        worst.add_metric(where, float(s.max_pct) / 100)
        last.add_metric(where, float(s.last_pct) / 100)
    yield from (comparisons, divergences, worst, last)
    yield GaugeMetricFamily(
        f"{PREFIX}_mark_divergence_threshold_ratio",
        "A comparison above this is a divergence (Rollout.divergence_pct / 100).",
        float(d.threshold_pct) / 100,
    )


def rollout_families(metrics: Metrics) -> Iterator[Metric]:
    """Where the rollout stands (`Metrics.rollout`); nothing when the core does not say."""
    r = metrics.rollout
    if r is None:
        return
    mode = GaugeMetricFamily(
        f"{PREFIX}_rollout_mode", "1 for the rollout mode in force, 0 for the others.", labels=["mode"]
    )
    for m in Mode:
        mode.add_metric([m.value], 1 if m.value == r.mode else 0)
    yield mode
    yield GaugeMetricFamily(
        f"{PREFIX}_rollout_share", "In cutover, the share of symbols driven by the stream.", r.share
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_rollout_rest_polling",
        "1 while REST polling drives positions (a mode or a rollback).",
        1 if r.rest_polling else 0,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_rollout_rolled_back",
        "1 while an automatic rollback to REST is in force.",
        0 if r.rolled_back_for is None else 1,
    )
    rolled = GaugeMetricFamily(
        f"{PREFIX}_rollout_rolled_back_seconds", "Seconds the rollback in force has lasted (absent: none)."
    )
    if r.rolled_back_for is not None:
        rolled.add_metric([], r.rolled_back_for)
    yield rolled
    yield GaugeMetricFamily(
        f"{PREFIX}_rollout_positions_fallback",
        "1 while positions are polled over REST because the private link is down.",
        1 if r.positions_fallback else 0,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_rollout_marks_fallback_symbols",
        "Symbols whose marks are polled over REST because the stream's are stale.",
        len(r.marks_fallback),
    )
    yield CounterMetricFamily(
        f"{PREFIX}_rollout_rest_requests",
        "Periodic REST requests spent (polls, fallbacks, comparisons).",
        r.rest_requests,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_rollout_clock_failures",
        "REST server-time samples that failed (optional: pongs also estimate the clock offset).",
        r.clock_failures,
    )


class ExchangeCollector(Collector):
    """What `bybit-hybrid sim` serves: the served FakeExchange's own counters (it has no HybridCore).

    `bybit_hybrid_sim_connections{kind}`, `bybit_hybrid_sim_accepted_total`,
    `bybit_hybrid_sim_rest_requests_total` and `bybit_hybrid_sim_violations_total` (requests a correct client
    never sends: the number a bot's test wants to stay 0)."""

    def __init__(self, served: Any) -> None:
        self._served = served

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        def read(ex: Any) -> tuple[list[str | None], int]:
            return [ex.kind_of(c) for c in ex.connections()], len(ex.violations)

        kinds, violations = self._served.call(read)  # on the server's thread: the exchange is not shared
        conns = GaugeMetricFamily(
            f"{PREFIX}_sim_connections", "Open WebSocket connections, by endpoint.", labels=["kind"]
        )
        for kind in sorted({str(k) for k in kinds}):
            conns.add_metric([kind], sum(1 for k in kinds if str(k) == kind))
        yield conns
        yield CounterMetricFamily(
            f"{PREFIX}_sim_accepted", "WebSocket connections accepted.", self._served.accepted
        )
        yield CounterMetricFamily(
            f"{PREFIX}_sim_rest_requests", "REST requests answered.", self._served.rest_requests
        )
        yield CounterMetricFamily(
            f"{PREFIX}_sim_violations", "Client requests that break Bybit's rules.", violations
        )


def snapshot_source(stream: Any) -> Callable[[], Snapshot]:
    """`() -> (Metrics, Health)` for a `HybridCore` or any adapter's stream, read where it is safe to.

    * a `HybridCore`: read directly (the caller owns its thread);
    * the threaded `HybridStream`: `stream.call(...)` on its loop thread;
    * the bot drop-in (`BybitHybridStream`): its current `.stream` (a fresh one after each `start()`);
    * the anyio / asyncio `HybridStream`: its `.core`; when this is called inside a running asyncio loop,
      each read is run on that loop (a scrape comes from the HTTP server's thread, and the core is not
      thread-safe), otherwise (trio) read from the scraping thread, retried if it raced the loop.
    """
    from .threaded import HybridStream as ThreadedStream  # stdlib only: importing it is cheap

    if isinstance(stream, HybridCore):
        core = stream
        return lambda: _take(core)
    if isinstance(stream, ThreadedStream):
        threaded = stream
        return lambda: threaded.call(_take, timeout=_CALL_TIMEOUT)
    if hasattr(stream, "stream") and not hasattr(stream, "core"):  # the bot drop-in: look it up per scrape
        bot = stream
        return _on_loop(lambda: bot.stream.core)
    if isinstance(getattr(stream, "core", None), HybridCore):
        async_stream = stream
        return _on_loop(lambda: async_stream.core)
    raise TypeError(f"cannot find a HybridCore in {type(stream).__name__}: pass a source to HybridCollector")


def _on_loop(core_of: Callable[[], HybridCore]) -> Callable[[], Snapshot]:
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None

    def source() -> Snapshot:
        if loop is None or loop.is_closed():
            return _racy(core_of)
        try:
            if asyncio.get_running_loop() is loop:  # scraped from the loop itself: waiting would deadlock
                return _take(core_of())
        except RuntimeError:
            pass
        future: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(_take(core_of()))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(_CALL_TIMEOUT)

    return source


def _racy(core_of: Callable[[], HybridCore]) -> Snapshot:
    # Off the loop's thread a snapshot can meet a dict the loop is changing ("changed size during
    # iteration"); the next try almost always succeeds, and a snapshot is cheap.
    for _ in range(2):
        try:
            return _take(core_of())
        except RuntimeError:
            continue
    return _take(core_of())


def register(stream: Any, registry: CollectorRegistry = REGISTRY) -> Collector:
    """Register the collector for `stream` (any adapter, a `HybridCore`, or a `ServedExchange`) in
    `registry` (prometheus_client's default) and return it (for `registry.unregister`)."""
    from .server import ServedExchange

    collector: Collector
    if isinstance(stream, ServedExchange):
        collector = ExchangeCollector(stream)
    else:
        collector = HybridCollector(snapshot_source(stream))
    registry.register(collector)
    return collector


def serve(registry: CollectorRegistry, port: int) -> tuple[Any, threading.Thread]:
    """prometheus_client's HTTP server for `registry` on 127.0.0.1:`port` (0: any free port; the bound port is
    `server.server_port`). Loopback only: metrics say what a bot holds; put a proxy in front to share them."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr="127.0.0.1", registry=registry)
