"""The rollout (issue 12, "Must hold"), through the Simulation: in every mode the application sees every
position open, change and close once, across outages of either link; REST stays under Bybit's limits and
`Rollout.rest_rate` whatever REST does; divergence figures match the injected fault; mode switches and the
automatic rollback keep the positions and hand over within the plan's 30 seconds; the production fallback
starts and ends; `rest` opens no WebSocket and `canary` delivers no market data. Time is the Simulation's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from bybit_hybrid_core import (
    Config,
    Credentials,
    Dial,
    Endpoints,
    Event,
    ExecutionUpdate,
    FallbackEnded,
    FallbackStarted,
    HealthChanged,
    HealthRules,
    Link,
    LinkDown,
    MarksCompared,
    Mode,
    ModeChanged,
    OrderbookUpdate,
    OrderUpdate,
    PositionClosed,
    PositionKey,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    ProtocolProblem,
    PublicTrades,
    RestCall,
    RollbackEnded,
    RolledBack,
    Rollout,
    Subscribed,
    TickerUpdate,
    WalletUpdate,
)
from bybit_hybrid_core._health import RolloutStatus  # not re-exported: only the annotation needs it
from bybit_hybrid_core.testing import DEFAULT_START_MS, Simulation, Venue

CREDS = Credentials("test-key", "test-secret")
BTC = ("linear", "BTCUSDT", 0)
ETH = ("linear", "ETHUSDT", 0)
INV = ("inverse", "BTCUSD", 0)  # outside a 0.5 cutover share (BTCUSDT, ETHUSDT are inside)
POSITIONS = "/v5/position/list"
TICKERS = "/v5/market/tickers"
MODES = [("rest", 1.0), ("canary", 1.0), ("parallel", 1.0), ("cutover", 0.5), ("production", 1.0)]
MARKET_DATA = (TickerUpdate, OrderbookUpdate, PublicTrades, OrderUpdate, ExecutionUpdate, WalletUpdate)


E = TypeVar("E", bound=Event)


def of(sim: Simulation, kind: type[E]) -> list[E]:
    return [e for e in sim.events if isinstance(e, kind)]


def rollout(sim: Simulation) -> RolloutStatus:
    status = sim.core.metrics().rollout
    assert status is not None
    return status


def simulation(
    mode: str = "production",
    seed: int = 3,
    *,
    health: HealthRules | None = None,
    venue: Venue | None = None,
    **rollout: Any,
) -> Simulation:
    config = Config(
        credentials=CREDS,
        endpoints=Endpoints.custom("ws://fake.bybit"),
        mode=Mode(mode),
        rollout=Rollout(**rollout),
        health=health or HealthRules(),
    )
    venue = venue or Venue(seed, DEFAULT_START_MS, interval=0.5)
    return Simulation(config, seed=seed, venue=venue, publish_interval=0.5)


# ------------------------------------------------------------------------------- the application's view


class AppView:
    """What a handler knows from the delivered position events; every inconsistency is recorded."""

    def __init__(self) -> None:
        self.open: dict[PositionKey, tuple[str, Decimal]] = {}
        self.errors: list[str] = []
        self.seen = 0

    def feed(self, events: list[Event]) -> None:
        for e in events[self.seen :]:
            if isinstance(e, PositionOpened):
                key = e.position.key
                if key in self.open:
                    self.errors.append(f"t={e.at:.3f} {key} opened twice")
                self.open[key] = (e.position.side, e.position.size)
            elif isinstance(e, PositionUpdate):
                if e.key not in self.open:
                    self.errors.append(f"t={e.at:.3f} {e.key} updated while not open")
                self.open[e.key] = (e.side, e.size)
            elif isinstance(e, PositionClosed) and self.open.pop(e.position.key, None) is None:
                self.errors.append(f"t={e.at:.3f} {e.position.key} closed while not open")
        self.seen = len(events)

    def check(self, sim: Simulation, when: str) -> None:
        self.feed(sim.events)
        exchange = {k: (p.side, p.size) for k, p in sim.exchange.positions().items()}
        assert self.errors == [], (when, self.errors[:5])
        assert self.open == exchange, (when, self.open, exchange)
        assert {k: (p.side, p.size) for k, p in sim.core.positions().items()} == exchange, when


def outage(sim: Simulation, kind: str, seconds: float, during: Callable[[], None] | None = None) -> None:
    """`kind`'s links go down and stay down for `seconds` (every upgrade refused), then come back."""
    sim.exchange.geo_block()
    sim.exchange.drop_link(kind, close_frame=False)
    sim.advance(1.0)
    if during is not None:
        during()
    sim.advance(seconds - 1.0)
    sim.exchange.geo_block(False)


def settle(sim: Simulation, seconds: float = 40.0) -> None:
    """Long enough for a redial backoff to run out, a poll round and a snapshot to land."""
    sim.advance(seconds)


# --------------------------------------------------------------------- 1. no duplicate, no gap, any mode


@pytest.mark.parametrize(("mode", "share"), MODES, ids=[m for m, _ in MODES])
def test_every_open_change_and_close_reaches_the_handler_once_across_outages(mode: str, share: float) -> None:
    sim = simulation(mode, share=share)
    ex, view = sim.exchange, AppView()
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    ex.open_position("BTCUSD", side="Sell", size="100", price="67000", category="inverse")
    settle(sim, 10.0)
    view.check(sim, "start")
    ex.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    ex.place_order("BTCUSDT", "Buy", Decimal("0.2"))
    settle(sim, 10.0)
    view.check(sim, "trades")

    def trade_while_private_is_down() -> None:
        ex.place_order("BTCUSDT", "Sell", Decimal("0.1"))
        ex.close_position("ETHUSDT")
        ex.place_order("BTCUSD", "Sell", Decimal("50"), "inverse")

    outage(sim, "private", 30.0, trade_while_private_is_down)
    settle(sim)
    view.check(sim, "after the private outage")

    def trade_while_public_is_down() -> None:
        ex.open_position("ETHUSDT", side="Buy", size="1", price="3500")
        ex.close_position("BTCUSD", "inverse")

    outage(sim, "public", 30.0, trade_while_public_is_down)
    settle(sim)
    view.check(sim, "after the public outage")

    outage(sim, "all", 20.0, lambda: ex.close_position("BTCUSDT"))
    settle(sim)
    view.check(sim, "after both links were down")
    assert sim.problems() == []
    opened = {e.position.key for e in of(sim, PositionOpened)}
    assert opened == {BTC, ETH, INV}


# ------------------------------------------------------------------------------------- 2. REST rates


def rest_calls(sim: Simulation) -> list[tuple[float, RestCall]]:
    """(when, action) of every REST request the core made: `rest_requests` and the RestCalls, in order."""
    calls = [a for a in sim.actions if isinstance(a, RestCall)]
    assert len(calls) == len(sim.rest_requests)
    return [(t, call) for (t, _), call in zip(sim.rest_requests, calls, strict=True)]


def periodic(sim: Simulation) -> list[float]:
    """When the periodic requests went out: all but the stream's own snapshot round at each private
    (re)subscription of `position` (not periodic: one per private link up, bounded by the dial budget)."""
    ups = {e.at for e in of(sim, Subscribed) if e.link is Link.PRIVATE}
    return [t for t, call in rest_calls(sim) if not (call.request.purpose == "snapshot" and t in ups)]


def over_bucket(times: list[float], rate: float) -> list[str]:
    """Windows with more requests than a bucket of `rate` per second and a burst of twice it allows."""
    times, bad = sorted(times), []
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            if times[j] - start > 60.0:
                break
            if j - i + 1 > rate * (times[j] - start) + 2 * rate + 1e-9:
                bad.append(f"{j - i + 1} requests within [{start:.3f}, {times[j]:.3f}]")
    return bad


def over_ip_limit(times: list[float]) -> int:
    """The most requests in any 5-second window (Bybit: 600 per IP)."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + 5.0) for i, t in enumerate(times)), default=0)


REST_FAULTS: Mapping[str, Callable[[Simulation], None]] = {
    "healthy": lambda sim: None,
    "failing 503": lambda sim: sim.exchange.rest_fail(10_000, status=503),
    "failing retCode": lambda sim: sim.exchange.rest_fail(10_000, ret_code=10016),
    "slow past the timeout": lambda sim: sim.exchange.rest_delay(12.0),
    "slow tickers": lambda sim: sim.exchange.rest_delay(4.0, path=TICKERS),
    "rate limited": lambda sim: sim.exchange.rest_rate_limit(10_000),
    "positions 10006": lambda sim: sim.exchange.rest_fail(10_000, ret_code=10006, path=POSITIONS),
    "IP banned": lambda sim: sim.exchange.ip_rate_limit(requests=5, window=5.0, ban=30.0),
}


@pytest.mark.parametrize("fault", list(REST_FAULTS))
@pytest.mark.parametrize("mode", ["rest", "parallel", "cutover", "production"])
def test_rest_stays_under_bybits_limits_and_the_rollout_rate_whatever_it_does(mode: str, fault: str) -> None:
    rate = 2.0  # a burst of 4 holds one poll round (3 listings: linear USDT and USDC, inverse)
    sim = simulation(mode, share=0.5, rest_rate=rate, compare_interval=5.0)
    ex = sim.exchange
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    ex.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    ex.open_position("BTCUSD", side="Sell", size="100", price="67000", category="inverse")
    sim.advance(5.0)
    REST_FAULTS[fault](sim)
    outage(sim, "all", 40.0)  # the positions and marks fallbacks poll too
    sim.advance(60.0)
    assert over_bucket(periodic(sim), rate) == []
    assert over_ip_limit([t for t, _ in sim.rest_requests]) <= 600
    assert len(sim.rest_requests) <= rate * sim.now + 2 * rate + 3 * len(of(sim, Subscribed))


def test_the_default_rate_stays_far_under_the_ip_limit_with_rest_failing_for_ten_minutes() -> None:
    sim = simulation("parallel")
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        sim.exchange.open_position(symbol, side="Buy", size="1", price="100")
    sim.advance(5.0)
    sim.exchange.rest_fail(100_000, status=502)
    sim.advance(600.0)
    assert over_ip_limit([t for t, _ in sim.rest_requests]) <= 5 * 2 * Rollout().rest_rate
    assert over_bucket(periodic(sim), Rollout().rest_rate) == []


# ----------------------------------------------------------------------------------------- 3. divergence


def compared(sim: Simulation) -> list[MarksCompared]:
    return [e for e in sim.events if isinstance(e, MarksCompared)]


def check_divergence(sim: Simulation, pct: Decimal) -> None:
    """Every comparison of BTCUSDT saw REST off by `pct` % of the stream's mark (REST's on the tick)."""
    rows = sim.core.metrics().divergence.by_symbol
    btc = rows["linear:BTCUSDT"]
    events = [e for e in compared(sim) if e.symbol == "BTCUSDT"]
    assert btc.comparisons == len(events) >= 3 and btc.divergences == btc.comparisons
    tick = Decimal("0.1")
    for e in events:
        assert e.diverged
        assert abs(e.rest_mark - e.stream_mark * (1 + pct / 100)) <= tick, e  # the injected skew
        # divergence_pct is |stream - rest| in % of the REST mark (MarksCompared, Rollout.divergence_pct)
        assert e.divergence_pct == (abs(e.stream_mark - e.rest_mark) / e.rest_mark * 100).quantize(
            Decimal("0.0001")
        )
    expected = pct / (1 + pct / 100)  # 5 % above the stream is 4.76 % of the REST mark
    assert abs(btc.max_pct - expected) < Decimal("0.001"), btc.max_pct


@pytest.mark.parametrize(("mode", "share"), [("production", 1.0), ("cutover", 0.5)])
def test_a_rest_mark_off_by_five_percent_diverges_on_every_comparison(mode: str, share: float) -> None:
    sim = simulation(mode, share=share, compare_interval=5.0)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.exchange.rest_mark_divergence("BTCUSDT", 5)
    sim.advance(60.0)
    check_divergence(sim, Decimal(5))
    assert sim.core.metrics().divergence.divergences == sim.core.metrics().divergence.comparisons


def test_parallel_compares_every_poll_with_the_streams_mark() -> None:
    sim = simulation("parallel")
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.exchange.rest_mark_divergence("BTCUSDT", 5)  # the position list's markPrice too (4281940)
    sim.advance(30.0)
    check_divergence(sim, Decimal(5))


@pytest.mark.parametrize(("mode", "share"), [("parallel", 1.0), ("cutover", 0.5), ("production", 1.0)])
def test_without_the_fault_nothing_diverges(mode: str, share: float) -> None:
    sim = simulation(mode, share=share, compare_interval=5.0)
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(60.0)
    divergence = sim.core.metrics().divergence
    assert divergence.comparisons >= 5 and divergence.divergences == 0
    assert not any(e.diverged for e in compared(sim))


# ------------------------------------------------------------------------- 4. switches and the rollback


def first_rest_snapshot_update(sim: Simulation, since: float) -> PositionUpdate:
    return next(
        e
        for e in sim.events
        if isinstance(e, PositionUpdate) and e.at >= since and e.source == "rest" and e.cause == "snapshot"
    )


def test_mode_switches_at_run_time_keep_the_positions_and_hand_over() -> None:
    sim = simulation("production")
    ex, view = sim.exchange, AppView()
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    ex.open_position("BTCUSD", side="Sell", size="100", price="67000", category="inverse")
    sim.advance(10.0)
    view.check(sim, "production")
    for mode, share in [
        ("rest", 1.0),
        ("canary", 1.0),
        ("cutover", 0.5),
        ("parallel", 1.0),
        ("production", 1),
    ]:
        switched = sim.now
        sim.core.set_mode(mode, share)
        sim.advance(0.5)
        ex.place_order("BTCUSDT", "Buy", Decimal("0.1"))
        sim.advance(10.0)
        changed = of(sim, ModeChanged)[-1]
        assert changed.at <= switched and changed.mode == mode and sim.core.mode is Mode(mode)
        view.check(sim, mode)
        after = [e for e in sim.events if isinstance(e, PositionUpdate) and e.at > switched + 5.0]
        for key in (BTC, INV):
            rest = Mode(mode).rest_driven or (mode == "cutover" and key == INV)
            sources = {e.source for e in after if e.key == key}
            assert sources == ({"rest"} if rest else {"ticker"}), (mode, key, sources)
    assert sim.problems() == []


@pytest.mark.parametrize("start", ["production", "parallel"])
def test_cutover_with_a_share_hands_the_symbols_outside_it_to_rest(start: str) -> None:
    sim = simulation(start)
    ex, view = sim.exchange, AppView()
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    ex.open_position("BTCUSD", side="Sell", size="100", price="67000", category="inverse")
    sim.advance(10.0)
    sim.core.set_mode("cutover", 0.5)
    sim.advance(10.0)
    assert sim.core.mode is Mode.CUTOVER and rollout(sim).share == 0.5
    ex.place_order("BTCUSD", "Sell", Decimal("100"), "inverse")
    ex.place_order("BTCUSDT", "Buy", Decimal("0.1"))
    sim.advance(10.0)
    view.check(sim, "cutover")
    late = [e for e in of(sim, PositionUpdate) if e.at > sim.now - 5.0]
    assert {e.source for e in late if e.key == INV} == {"rest"}
    assert {e.source for e in late if e.key == BTC} == {"ticker"}


def close_while_the_stream_is_behind(sim: Simulation) -> None:
    """Two positions open; the private link goes down and stays down (geo-blocked); ETHUSDT closes 0.5 s
    later, and 3 s pass: REST has seen the close, the stream's book has not."""
    ex = sim.exchange
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    ex.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    sim.advance(10.0)
    ex.geo_block()
    ex.drop_link("private", close_frame=False)
    sim.advance(0.5)
    ex.close_position("ETHUSDT")
    sim.advance(3.0)


def test_a_hand_over_waits_for_the_new_driver_to_be_current() -> None:
    """To the stream while its book is behind (the private link down, a close it has not seen): REST keeps
    driving until the stream is current; to REST while the stream is behind: REST's fresh poll closes it."""
    sim = simulation("canary")
    ex, view = sim.exchange, AppView()
    close_while_the_stream_is_behind(sim)  # REST polled: the handler knows ETHUSDT closed; the stream not
    view.check(sim, "closed while the private link is down")
    sim.core.set_mode("production")
    sim.advance(3.0)  # before the positions fallback (10 s) could bring the stream's book up to date
    view.check(sim, "switched to a stream that is behind")
    assert sim.core.mode is Mode.CANARY  # still REST until the stream is current
    ex.geo_block(False)
    sim.run_until(lambda: sim.core.mode is Mode.PRODUCTION, timeout=60.0, step=0.01)
    handed = sim.now
    sim.advance(3.0)
    view.check(sim, "the stream drives")
    assert [e for e in of(sim, TickerUpdate) if e.at > handed], "market data must flow once the stream drives"
    # and back: the stream behind again (private down, fallback far off), REST's first poll closes it
    sim = simulation("production", positions_fallback_after=1000.0)
    ex, view = sim.exchange, AppView()
    close_while_the_stream_is_behind(sim)
    sim.core.set_mode("rest")
    sim.advance(3.0)
    view.check(sim, "handed to REST")
    assert [e.position.key for e in of(sim, PositionClosed)] == [ETH]


@pytest.mark.parametrize(("mode", "share"), [("production", 1.0), ("cutover", 0.5)])
def test_an_automatic_rollback_hands_over_to_rest_within_30_s_and_returns(mode: str, share: float) -> None:
    sim = simulation(
        mode,
        share=share,
        auto_rollback=True,
        return_after=60.0,
        health=HealthRules(links_down_critical=20.0),
    )
    ex, view = sim.exchange, AppView()
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(10.0)
    view.check(sim, "before")
    outage(sim, "all", 60.0, lambda: ex.place_order("BTCUSDT", "Buy", Decimal("0.1")))
    (rolled,) = of(sim, RolledBack)
    critical = next(e for e in of(sim, HealthChanged) if e.health.verdict == "critical")
    assert rolled.at == critical.at and rolled.mode == mode
    assert rolled.reasons and any("down" in r for r in rolled.reasons)
    first = first_rest_snapshot_update(sim, rolled.at)
    assert first.key == BTC and first.at - rolled.at <= 30.0
    assert sim.core.positions() == ex.positions() and rollout(sim).rolled_back_for is not None
    view.check(sim, "rolled back")
    sim.advance(120.0)
    (ended,) = of(sim, RollbackEnded)
    assert ended.how == "healthy" and ended.rolled_back_for > 60.0
    ex.place_order("BTCUSDT", "Sell", Decimal("0.2"))
    sim.advance(10.0)
    later = [e for e in sim.events if isinstance(e, PositionUpdate) and e.at > ended.at]
    assert later and {e.source for e in later} == {"ticker"}
    assert any(e.cause == "position" and e.size == Decimal("0.4") for e in later)  # the stream drives
    view.check(sim, "returned")
    assert rollout(sim).rolled_back_for is None


def test_a_rollback_with_slow_rest_still_hands_over_within_30_s_and_resume_ends_it() -> None:
    sim = simulation(
        "production", auto_rollback=True, return_after=None, health=HealthRules(links_down_critical=20.0)
    )
    ex, view = sim.exchange, AppView()
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(10.0)
    ex.rest_delay(4.0)
    outage(sim, "all", 45.0)
    (rolled,) = of(sim, RolledBack)
    assert first_rest_snapshot_update(sim, rolled.at).at - rolled.at <= 30.0
    sim.advance(400.0)
    assert of(sim, RollbackEnded) == [] and rollout(sim).rolled_back_for is not None
    view.check(sim, "rolled back, healthy")
    assert sim.core.resume() is True and sim.core.resume() is False
    sim.advance(10.0)
    (ended,) = of(sim, RollbackEnded)
    assert ended.how == "by hand"
    view.check(sim, "resumed")
    assert {e.source for e in of(sim, PositionUpdate) if e.at > ended.at + 1.0} == {"ticker"}


def test_no_rollback_without_auto_rollback_or_in_a_rest_driven_mode() -> None:
    for mode, auto in [("production", False), ("parallel", True)]:
        sim = simulation(mode, auto_rollback=auto, health=HealthRules(links_down_critical=20.0))
        sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
        sim.advance(5.0)
        outage(sim, "all", 40.0)
        assert any(e.health.verdict == "critical" for e in of(sim, HealthChanged))
        assert of(sim, RolledBack) == []


# -------------------------------------------------------------------------------- 5. production fallback


def test_the_private_link_down_polls_positions_over_rest_until_it_is_back() -> None:
    sim = simulation("production")
    ex = sim.exchange
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(10.0)
    after = Rollout().positions_fallback_after
    outage(sim, "private", 40.0, lambda: ex.place_order("BTCUSDT", "Buy", Decimal("0.3")))
    down = next(e for e in of(sim, LinkDown) if e.link is Link.PRIVATE)
    (started,) = [e for e in of(sim, FallbackStarted) if e.what == "positions"]
    assert after <= started.at - down.at < after + 0.1
    polled = [t for t, path in sim.rest_requests if path == POSITIONS and started.at <= t < sim.now]
    assert len(polled) >= 3 * 10  # a round (3 listings) every poll_interval
    grown = next(e for e in of(sim, PositionUpdate) if e.size == Decimal("0.8"))
    assert started.at <= grown.at <= started.at + Rollout().poll_interval + 0.1 and grown.cause == "snapshot"
    sim.advance(40.0)
    (ended,) = [e for e in of(sim, FallbackEnded) if e.what == "positions"]
    up = [e for e in of(sim, Subscribed) if e.link is Link.PRIVATE and e.at > down.at]
    assert up and ended.at <= up[0].at + 1.0
    quiet = [t for t, path in sim.rest_requests if path == POSITIONS and t > ended.at + 1.0]
    assert quiet == []
    assert sim.core.positions() == ex.positions()


def test_a_refused_ticker_prices_the_position_over_rest_until_the_ticker_speaks() -> None:
    sim = simulation("production")
    ex = sim.exchange
    ex.fail_subscribe("tickers.ETHUSDT")  # refused until healed
    ex.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    sim.advance(20.0)
    (started,) = [e for e in of(sim, FallbackStarted) if e.what == "marks"]
    assert started.symbols == ("ETHUSDT",)
    rest = [e for e in of(sim, PositionUpdate) if e.at >= started.at and e.source == "rest"]
    assert len(rest) >= 3 and not any(e.stale for e in rest)
    assert rollout(sim).marks_fallback == ("linear:ETHUSDT",)
    ex.heal()
    sim.advance(200.0)  # the refused topic's retry comes round
    (ended,) = [e for e in of(sim, FallbackEnded) if e.what == "marks"]
    first_ticker = next(e for e in of(sim, TickerUpdate) if e.symbol == "ETHUSDT")
    assert first_ticker.at <= ended.at <= first_ticker.at + Rollout().poll_interval + 0.1
    tail = [e for e in of(sim, PositionUpdate) if e.at > ended.at]
    assert tail and {e.source for e in tail} == {"ticker"}
    assert rollout(sim).marks_fallback == ()


def test_a_poll_interval_longer_than_the_stale_threshold_keeps_rest_pricing_between_polls() -> None:
    """A REST mark speaks until the next poll is due: with polls every 8 s and marks stale after 5 s the
    updates stay priced by REST (never flipping to the position's own, stale mark between two polls)."""
    sim = simulation("production", poll_interval=8.0)
    ex = sim.exchange
    ex.fail_subscribe("tickers.ETHUSDT")
    ex.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    sim.advance(60.0)
    (started,) = [e for e in of(sim, FallbackStarted) if e.what == "marks"]
    after = [e for e in of(sim, PositionUpdate) if e.at > started.at + 1.0]
    assert len(after) >= 4
    assert {e.source for e in after} == {"rest"} and not any(e.stale for e in after)


def test_the_marks_fallback_waits_marks_fallback_after_from_when_the_ticker_went_silent() -> None:
    sim = simulation("production")
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(30.0)
    outage(sim, "linear", 30.0)
    down = next(e for e in of(sim, LinkDown) if e.link is Link.LINEAR)
    (started,) = [e for e in of(sim, FallbackStarted) if e.what == "marks"]
    after, period = Rollout().marks_fallback_after, Rollout().poll_interval
    assert after - 0.5 <= started.at - down.at < after + period  # not at the next timer after the drop


# ------------------------------------------------------------------------------------- 6. rest, canary


def test_mode_rest_opens_no_websocket() -> None:
    sim = simulation("rest")
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(30.0)
    assert not [a for a in sim.actions if isinstance(a, Dial)] and sim.core.status() == {}
    assert sim.exchange.connections() == []
    assert {e.source for e in of(sim, PositionUpdate)} == {"rest"}
    assert sim.core.positions() == sim.exchange.positions()


def test_canary_delivers_no_market_data_but_the_streams_health_is_watched() -> None:
    sim = simulation("canary")
    sim.exchange.fail_subscribe("tickers.ETHUSDT")  # the stream would leave this position dark
    sim.exchange.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(40.0)
    assert not [e for e in sim.events if isinstance(e, (*MARKET_DATA, PositionsSynced))]
    assert "tickers.BTCUSDT" in sim.exchange.subscriptions("linear")  # the stream runs beside REST
    assert {e.source for e in of(sim, PositionUpdate)} == {"rest"}
    rules = {r.rule for e in of(sim, HealthChanged) for r in e.health.reasons}
    assert "position_dark_warning" in rules  # judged on the stream's own pipeline
    outage(sim, "linear", 40.0)
    rules = {r.rule for e in of(sim, HealthChanged) for r in e.health.reasons}
    assert "link_down_warning" in rules
    assert sim.core.positions() == sim.exchange.positions()


def test_a_failed_server_time_sample_is_counted_not_reported_as_a_problem() -> None:
    # A REST base that answers the time request with a non-Bybit page (an HTTP 426 from a WebSocket-only
    # server): the sample is optional, so the stream reads as healthy and the failure shows in the metrics.
    sim = simulation("production")
    sim.exchange.rest_fail(1, status=426, path="/v5/market/time")
    sim.advance(5.0)
    assert of(sim, ProtocolProblem) == []
    assert rollout(sim).clock_failures == 1
    sim.advance(Rollout().time_interval + 1.0)  # the next sample succeeds and counts nothing
    assert rollout(sim).clock_failures == 1
    assert sim.core.metrics().clock_offset_ms is not None


def test_the_data_planes_deadline_is_the_earliest_of_its_parts_through_outages_and_rollbacks() -> None:
    # `DataPlane.deadline()` reads every timer queue in one pass (a per-read cost); it must say what asking
    # each part would, whatever the REST fallbacks, snapshot rounds and rollbacks have armed.
    sim = simulation("production", auto_rollback=True, return_after=60.0)
    ex, plane = sim.exchange, sim.core._data
    ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    parts = (
        plane._interest.deadline,
        plane._join.deadline,
        plane._sync.deadline,
        plane._rest.deadline,
        plane._fallback.deadline,
        plane._router.return_deadline,
        plane._pacer.deadline,
    )
    seen: set[bool] = set()
    for step in range(120):
        if step == 10:
            outage(sim, "private", 30.0)
        if step == 50:
            outage(sim, "public", 20.0)
        if step == 80:
            sim.core.set_mode("cutover", 0.5)
        sim.advance(1.0)
        expected = min((when for part in parts if (when := part()) is not None), default=None)
        assert plane.deadline() == expected
        seen.add(expected is None)
    assert False in seen  # timers were armed (not a vacuous comparison of None with None)
