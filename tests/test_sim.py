"""Simulation: the issue's example end to end, and every FakeExchange fault healing.

Each scenario opens a position, lets the links come up, injects one fault, checks the core noticed it the
way it should (the event it emits), heals the exchange, waits a quiet period and then checks the invariants:
the core's positions equal the exchange's, every link is up, the open position's ticker is subscribed and
its last `PositionUpdate` carries the exchange's latest mark, and nothing broke a rule of the protocol.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import FrameType

import msgspec
import pytest

from bybit_hybrid_core import Config, Credentials, Endpoints, Link, Timings
from bybit_hybrid_core._codec import decode
from bybit_hybrid_core._events import (
    AuthFailed,
    Event,
    HandshakeRefused,
    LinkDown,
    LinkUp,
    OrderbookUpdate,
    PositionClosed,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    ProtocolProblem,
    Send,
    SnapshotFailed,
    SubscriptionFailed,
)
from bybit_hybrid_core.testing import DEFAULT_START_MS, FakeExchange, Simulation, Venue

CREDS = Credentials("test-key", "test-secret")
WATCHDOG_SECONDS = 30
CONFIG = Config(credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"))
KEY = ("linear", "BTCUSDT", 0)


class Hang(Exception):
    """A call into the core did not return (a livelock): fail loudly instead of hanging the suite."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang("still running after the watchdog's limit")


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def started(config: Config = CONFIG, seed: int = 3, **kwargs: object) -> Simulation:
    """A simulation with an open position and its links up. The market steps every 0.5 s (Bybit: 0.1 s),
    which keeps these minutes-long scenarios fast without changing what they check."""
    kwargs.setdefault("venue", Venue(seed, DEFAULT_START_MS, interval=0.5))
    kwargs.setdefault("publish_interval", 0.5)
    sim = Simulation(config, seed=seed, **kwargs)  # type: ignore[arg-type]
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(2.0)
    return sim


def check_healed(sim: Simulation, *, ticker: bool = True) -> None:
    """The invariants after healing and a quiet period."""
    sim.settle()
    assert sim.core.positions() == sim.exchange.positions()
    assert {link for link, status in sim.core.status().items() if status.state == "LIVE"} == {
        Link.LINEAR,
        Link.PRIVATE,
    }
    if ticker:
        assert sim.exchange.subscriptions("linear") == {"tickers.BTCUSDT"}
        for key, position in sim.exchange.positions().items():
            update = sim.last_updates()[key]
            assert update.mark_price == sim.exchange.mark(position.symbol)
            assert update.size == position.size and not update.stale
    assert sim.problems() == []


def since(sim: Simulation, first: int, *types: type[Event]) -> list[Event]:
    return [e for e in sim.events[first:] if isinstance(e, types)]


# ----------------------------------------------------------------------------------------- the example


def test_the_issue_example() -> None:
    sim = Simulation(CONFIG, seed=3)  # a HybridCore wired to a FakeExchange in memory
    sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    sim.advance(2.0)  # virtual seconds: prices move, pings flow
    sim.exchange.drop_link("private", close_frame=False)
    sim.advance(40.0)
    assert sim.core.positions() == sim.exchange.positions()
    assert sim.core.positions()[KEY].size == Decimal("0.5")
    assert any(isinstance(e, LinkDown) and e.link is Link.PRIVATE for e in sim.events)
    check_healed(sim)


def test_position_updates_follow_the_mark() -> None:
    sim = started()
    first = len(sim.events)
    sim.exchange.mark("BTCUSDT", "70000")
    sim.advance(1.0)
    marks = [e.mark_price for e in sim.events[first:] if isinstance(e, PositionUpdate)]
    assert Decimal("70000.0") in marks
    update = sim.last_updates()[KEY]
    assert update.cause == "mark" and update.mark_price is not None
    assert update.unrealised_pnl == (update.mark_price - Decimal(67000)) * Decimal("0.5")


def test_a_quiet_simulation_keeps_every_link_for_15_minutes() -> None:
    config = Config(
        credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"), timings=Timings(max_active_time=45)
    )
    slow_market = Venue(3, DEFAULT_START_MS, interval=2.0)  # fewer pushes: this test is about links, not data
    sim = started(config, venue=slow_market, publish_interval=2.0)
    sim.advance(900.0)
    assert sim.events_of(LinkDown) == [] and sim.exchange.violations == []
    assert len(sim.dials) == 2


def test_lifecycle_open_grow_shrink_flip_close_and_the_ticker_follows() -> None:
    sim = started()
    for side, qty in (("Buy", "0.5"), ("Sell", "0.7"), ("Sell", "1.0"), ("Buy", "0.7")):
        sim.exchange.place_order("BTCUSDT", side, qty)
        sim.advance(1.0)
        sim.settle()
        assert sim.core.positions() == sim.exchange.positions()
    assert sim.exchange.positions() == {} and sim.events_of(PositionClosed)
    assert sim.exchange.subscriptions("linear") == {"tickers.BTCUSDT"}  # the release grace (30 s)
    sim.advance(31.0)
    assert sim.exchange.subscriptions("linear") == frozenset()
    sim.core.track("ETHUSDT")
    sim.advance(1.0)
    assert sim.exchange.subscriptions("linear") == {"tickers.ETHUSDT"}


def test_hedge_mode_legs_are_separate_positions() -> None:
    sim = started()
    sim.exchange.close_position("BTCUSDT")
    sim.exchange.venue.set_hedge_mode("linear", "BTCUSDT")  # type: ignore[attr-defined]
    sim.exchange.open_position("BTCUSDT", "Buy", "0.3", position_idx=1)
    sim.exchange.open_position("BTCUSDT", "Sell", "0.2", position_idx=2)
    sim.advance(1.0)
    sim.settle()
    assert set(sim.core.positions()) == {("linear", "BTCUSDT", 1), ("linear", "BTCUSDT", 2)}
    assert sim.core.positions() == sim.exchange.positions()


def test_same_seed_same_events_and_other_seeds_differ() -> None:
    def run(seed: int) -> bytes:
        sim = started(seed=seed, faults=0.2)
        sim.exchange.place_order("BTCUSDT", "Sell", "0.2")
        sim.advance(60.0)
        return msgspec.json.encode(sim.events)

    assert run(9) == run(9)
    assert run(9) != run(10)


# ---------------------------------------------------------------------------------------------- faults

Fault = Callable[[Simulation], object]


def calls(*faults: Fault) -> Fault:
    """Several faults in a row."""

    def run(sim: Simulation) -> None:
        for fault in faults:
            fault(sim)

    return run


FAULTS: list[tuple[str, Fault, Callable[[list[Event]], bool]]] = [
    (
        "drop private with a close frame",
        lambda s: s.exchange.drop_link("private"),
        lambda ev: any(isinstance(e, LinkDown) and "1001" in e.reason for e in ev),
    ),
    (
        "drop linear without a close frame",
        lambda s: s.exchange.drop_link("linear", close_frame=False),
        lambda ev: any(isinstance(e, LinkDown) and e.link is Link.LINEAR for e in ev),
    ),
    (
        "half-open private",
        lambda s: s.exchange.half_open("private"),
        lambda ev: any(isinstance(e, LinkDown) and "pong" in e.reason and e.at < 35 for e in ev),
    ),
    (
        "half-open linear",
        lambda s: s.exchange.half_open("linear"),
        # a link carrying tickers goes silent: half-open within seconds (silent_link_after), not at the pong
        lambda ev: any(
            isinstance(e, LinkDown) and e.link is Link.LINEAR and "half-open" in e.reason and e.at < 10
            for e in ev
        ),
    ),
    (
        "lose a pong",
        lambda s: s.exchange.lose_pongs("private", 1),
        lambda ev: any(isinstance(e, LinkDown) and "pong" in e.reason for e in ev),
    ),
    (
        "pongs 15 s late",
        lambda s: s.exchange.delay_pongs("linear", 15.0),
        lambda ev: any(isinstance(e, LinkDown) and "pong" in e.reason for e in ev),
    ),
    (
        "pongs 2 s late are fine",
        lambda s: s.exchange.delay_pongs("all", 2.0),
        lambda ev: not any(isinstance(e, LinkDown) for e in ev),
    ),
    (
        "refused auth",
        calls(lambda s: s.exchange.reject_auth(1), lambda s: s.exchange.drop_link("private")),
        lambda ev: any(isinstance(e, AuthFailed) and e.reason == "Params Error" for e in ev),
    ),
    (
        "clock skew past expires",
        calls(lambda s: s.exchange.clock_skew(15_000), lambda s: s.exchange.drop_link("private")),
        lambda ev: any(isinstance(e, AuthFailed) for e in ev),
    ),
    (
        "malformed JSON",
        lambda s: s.exchange.send_garbage("all", '{"topic":"tickers.BTCUSDT","type":"delta","data":{'),
        lambda ev: (
            len([e for e in ev if isinstance(e, ProtocolProblem)]) == 2
            and not any(isinstance(e, LinkDown) for e in ev)
        ),
    ),
    (
        "oversized message",
        lambda s: s.exchange.send_garbage("linear", '{"topic":"x","pad":"' + "x" * 2_000_000 + '"}'),
        lambda ev: not any(isinstance(e, LinkDown) and e.link is Link.PRIVATE for e in ev),
    ),
    (
        "broken framing",
        lambda s: s.exchange.send_garbage("private", b"\x81\x7f\xff\xff", raw=True),
        lambda ev: any(isinstance(e, LinkDown) and "frame" in e.reason for e in ev),
    ),
    (
        "duplicated messages",
        calls(
            lambda s: s.exchange.duplicate("all", 5, replies=True),
            lambda s: s.exchange.place_order("BTCUSDT", "Buy", "0.1"),
        ),
        lambda ev: True,
    ),
    (
        "reordered messages",
        calls(
            lambda s: s.exchange.reorder("all", 4),
            lambda s: s.exchange.place_order("BTCUSDT", "Buy", "0.1"),
        ),
        lambda ev: True,
    ),
    (
        "service restart",
        lambda s: s.exchange.restart_service(),
        lambda ev: not any(isinstance(e, ProtocolProblem) for e in ev),
    ),
    (
        "service restart dropping every link",
        lambda s: s.exchange.restart_service(drop_links=True),
        lambda ev: len([e for e in ev if isinstance(e, LinkUp)]) == 2,
    ),
    (
        "REST errors",
        calls(
            lambda s: s.exchange.rest_fail(2, status=503),
            lambda s: s.exchange.rest_fail(1, ret_code=10006),
            lambda s: s.exchange.drop_link("private"),
        ),
        lambda ev: (
            any(isinstance(e, SnapshotFailed) for e in ev) and any(isinstance(e, PositionsSynced) for e in ev)
        ),
    ),
    (
        "REST slower than the timeout",
        calls(lambda s: s.exchange.rest_delay(20.0), lambda s: s.exchange.drop_link("private")),
        lambda ev: any(isinstance(e, SnapshotFailed) and "transport" in e.reason for e in ev),
    ),
    (
        "geo-block",
        calls(lambda s: s.exchange.geo_block(), lambda s: s.exchange.drop_link("all")),
        lambda ev: any(isinstance(e, HandshakeRefused) and e.status == 403 for e in ev),
    ),
    (
        "refused dials",
        calls(lambda s: s.fail_dials(3), lambda s: s.exchange.drop_link("all", close_frame=False)),
        lambda ev: any(isinstance(e, LinkDown) and "refused" in e.reason for e in ev),
    ),
]


@pytest.mark.parametrize(("name", "fault", "noticed"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_heals(name: str, fault: Fault, noticed: Callable[[list[Event]], bool]) -> None:
    sim = started()
    first = len(sim.events)
    fault(sim)
    sim.advance(45.0)
    assert noticed(sim.events[first:]), [e for e in sim.events[first:] if not isinstance(e, PositionUpdate)][
        :20
    ]
    sim.calm()
    sim.advance(90.0)  # longer than the auth back-off (60 s) and the redial cap (30 s)
    check_healed(sim)


def test_orderbook_restart_with_u_1_resets_the_book() -> None:
    config = Config(
        credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"), topics=("orderbook.50.BTCUSDT",)
    )
    sim = started(config)
    sim.exchange.restart_service()
    first = len(sim.events)
    sim.advance(1.0)
    books = since(sim, first, OrderbookUpdate)
    assert any(b.u == 1 and b.snapshot for b in books)  # type: ignore[attr-defined]
    assert not since(sim, first, ProtocolProblem)


def test_a_refused_ticker_a_position_needs_is_retried_on_the_same_connection() -> None:
    """The issue's case: one transient refusal of an open position's ticker must not leave it dark while
    the link stays up (it used to wait for a reconnect that happened for another reason)."""
    sim = started()
    sim.exchange.fail_subscribe("tickers.BTCUSDT", n=1)
    sim.exchange.drop_link("linear")
    sim.advance(1.5)
    (failed,) = sim.events_of(SubscriptionFailed)
    assert failed.retry_in is not None and 0 < failed.retry_in <= Timings().topic_retry_base
    downs = len(sim.events_of(LinkDown))
    sim.advance(10.0)
    assert sim.exchange.subscriptions("linear") == frozenset({"tickers.BTCUSDT"})
    assert len(sim.events_of(LinkDown)) == downs  # the same connection: no redial was needed
    assert sim.core.status()[Link.LINEAR].failed == ()
    check_healed(sim)


def test_seeded_chaos_then_calm() -> None:
    sim = started(faults=0.3, seed=11)
    sim.exchange.place_order("BTCUSDT", "Buy", "0.2")
    sim.advance(60.0)
    assert len(sim.chaos.log) > 5
    sim.calm()
    sim.advance(120.0)
    check_healed(sim)


# --------------------------------------------------------------------------------- the network's checks


def test_the_network_reports_a_send_on_a_closed_link() -> None:
    sim = started()
    sim._on_action(Send(link=Link.SPOT, data=b"x"))  # no spot link was ever dialed
    assert sim.violations and "not connected" in sim.violations[0]


def test_a_simulation_can_share_an_exchange_and_latency_per_link() -> None:
    exchange = FakeExchange(7, credentials=CREDS)
    sim = Simulation(CONFIG, exchange=exchange, latency={Link.LINEAR: 0.05, Link.PRIVATE: 0.2})
    sim.advance(2.0)
    up = {e.link: e.at for e in sim.events_of(LinkUp)}
    assert sim.exchange is exchange and up[Link.LINEAR] == pytest.approx(0.15)  # connect, upgrade, 101
    assert up[Link.PRIVATE] == pytest.approx(1.0)  # ... then auth and its ack
    assert sim.events_of(PositionOpened) == []


# --------------------------------------------------------------------------- core bugs the simulation found


def test_stale_timer_at_the_float_boundary_does_not_livelock_the_join() -> None:
    """Found by `Simulation(seed=5, faults=0.2)`: a ticker at 13.705 and a tick at 18.705 s. 18.705 - 13.705
    is 4.999999999999998 < stale_mark_after (5.0), so the stale timer is re-armed at 13.705 + 5.0 == 18.705,
    which `Deadlines.due(18.705)` yielded again, forever. Fixed: staleness and the timer use one float sum."""
    from bybit_hybrid_core._plane.plane import DataPlane

    wall = 1_767_225_600_000
    events: list[object] = []
    plane = DataPlane(CONFIG, events.append, lambda a: None, lambda link, topic, reason: None)
    plane.on_link_up(Link.PRIVATE, 0.065, wall + 65)
    row = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "size": "0.5", "positionIdx": 0,
           "entryPrice": "67000", "markPrice": "67000", "seq": 5, "updatedTime": str(wall)}  # fmt: skip
    position = decode(json.dumps({"topic": "position", "creationTime": wall, "data": [row]}))
    plane.on_message(Link.PRIVATE, position, 0.065)  # type: ignore[arg-type]
    ticker = {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": wall + 13_705, "cs": 1,
              "data": {"symbol": "BTCUSDT", "markPrice": "67001.0"}}  # fmt: skip
    plane.on_message(Link.LINEAR, decode(json.dumps(ticker)), 13.705)  # type: ignore[arg-type]
    signal.alarm(3)
    plane.tick(18.705, wall + 18_705)
    last = [e for e in events if isinstance(e, PositionUpdate)][-1]
    assert last.stale and last.at == 18.705  # stale exactly at the deadline, and the timer is spent
    assert plane.deadline() is None or plane.deadline() > 18.705
