"""The liveness guarantee (docs/operations.md): an open position's mark is live, or loudly stale while the
core works to get it back. Refused topics, full connections, quiet topics, silent links, jittered backoffs
and a wall clock that moves, driven by hand (`Session`) or through the Simulation; `now` never from a clock.
"""

from __future__ import annotations

from typing import Any

from bybit_hybrid_core import (
    AuthFailed,
    Config,
    Credentials,
    Endpoints,
    Link,
    LinkDown,
    PositionUpdate,
    SubscriptionFailed,
    Timings,
)
from bybit_hybrid_core.testing import DEFAULT_START_MS, Simulation, Venue
from helpers import Session

CREDS = Credentials("test-key", "test-secret")


def simulation(seed: int = 3, **timings: Any) -> Simulation:
    config = Config(
        credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"), timings=Timings(**timings)
    )
    return Simulation(
        config, seed=seed, venue=Venue(seed, DEFAULT_START_MS, interval=0.5), publish_interval=0.5
    )


def updates_of(sim: Simulation, symbol: str, since: int = 0) -> list[PositionUpdate]:
    return [e for e in sim.events[since:] if isinstance(e, PositionUpdate) and e.symbol == symbol]


# ------------------------------------------------------------------------------ refused tickers are retried


def test_one_transient_refusal_does_not_leave_a_position_dark_while_the_link_stays_up() -> None:
    """The issue's report: `tickers.ETHUSDT` refused once, the link LIVE for the next ten minutes."""
    sim = simulation()
    sim.exchange.fail_subscribe("tickers.ETHUSDT", n=1)
    sim.exchange.open_position("ETHUSDT", side="Sell", size="2", price="3500")
    sim.advance(3.0)
    (failed,) = sim.events_of(SubscriptionFailed)
    assert failed.topic == "tickers.ETHUSDT" and failed.retry_in is not None
    first = len(sim.events)
    sim.advance(600.0)
    assert not [e for e in sim.events[first:] if isinstance(e, LinkDown)]  # no reconnect did it
    marks = {u.mark_price for u in updates_of(sim, "ETHUSDT", first) if u.cause == "mark"}
    assert len(marks) > 100  # live, every step, for ten minutes
    sim.settle()
    last = sim.last_updates()[("linear", "ETHUSDT", 0)]
    assert last.mark_price == sim.exchange.mark("ETHUSDT") and not last.stale


def test_refused_n_times_then_accepted_reports_rate_limited_and_shows_retrying() -> None:
    sim = simulation(topic_retry_base=2.0, topic_retry_cap=8.0, refusal_report_interval=60.0)
    sim.exchange.fail_subscribe("tickers.ETHUSDT", n=6)
    sim.exchange.open_position("ETHUSDT", side="Buy", size="1", price="3500")
    sim.advance(3.0)
    status = sim.core.status()[Link.LINEAR]
    assert [t for t, _ in status.retrying] == ["tickers.ETHUSDT"] and status.failed == ()
    assert all(0.0 <= wait <= 8.0 for _, wait in status.retrying)
    sim.advance(120.0)
    reports = sim.events_of(SubscriptionFailed)
    assert 1 <= len(reports) <= 2  # six refusals, told at most once a minute
    assert sum(r.refusals for r in reports) <= 6 and all(r.retry_in is not None for r in reports)  # type: ignore[attr-defined]
    assert "tickers.ETHUSDT" in sim.exchange.subscriptions("linear")
    status = sim.core.status()[Link.LINEAR]
    assert status.retrying == () and status.failed == ()
    sim.settle()
    assert sim.last_updates()[("linear", "ETHUSDT", 0)].mark_price == sim.exchange.mark("ETHUSDT")


def test_a_users_misspelt_topic_is_reported_once_and_never_retried_in_a_loop() -> None:
    sim = simulation()
    sim.advance(2.0)
    sim.exchange.fail_subscribe("orderbook.50.NOPEUSDT")  # for good
    sim.core.subscribe("orderbook.50.NOPEUSDT")
    sim.advance(600.0)
    assert len(sim.events_of(SubscriptionFailed)) == 1
    status = sim.core.status()[Link.LINEAR]
    assert [t for t, _ in status.failed] == ["orderbook.50.NOPEUSDT"] and status.retrying == ()


# ----------------------------------------------------------------------------- a full connection is split


# The hand-driven server pushes no tickers: the watchdog would (rightly) call these links half-open.
QUIET_OK = {"stale_mark_after": 1e9, "topic_quiet_after": 1e9, "silent_link_after": 1e9}


def pinned_session(symbols: int) -> Session:
    session = Session(Config(timings=Timings(**QUIET_OK)), auto_connect=True)
    session.start()
    for i in range(symbols):
        session.core.track(f"SYM{i:04d}USDT")
    session.pump()
    return session


def test_topics_past_one_connections_limit_open_another_connection() -> None:
    session = pinned_session(1300)  # "tickers.SYM0000USDT": 19 characters, 24,700 in all > 21,000
    dialed = [action.link for _, action in session.dials]
    assert dialed == [Link.LINEAR, Link.LINEAR_2]
    first = set(session.subscribed_topics(Link.LINEAR))
    second = set(session.subscribed_topics(Link.LINEAR_2))
    assert not first & second and len(first | second) == 1300  # every topic on exactly one connection
    assert sum(map(len, first)) <= 21_000
    assert not session.of(SubscriptionFailed)  # nothing a position needs is refused locally
    status = session.core.status()
    assert len(status[Link.LINEAR].subscriptions) + len(status[Link.LINEAR_2].subscriptions) == 1300


def test_a_topic_stays_on_its_connection_and_released_room_is_reused() -> None:
    session = pinned_session(1300)
    on_second = sorted(session.subscribed_topics(Link.LINEAR_2))
    moved = on_second[0]
    session.core.untrack(moved.removeprefix("tickers."))
    session.advance(31.0)  # past the release grace
    session.core.track("NEWCOINUSDT")
    session.pump()
    assert "tickers.NEWCOINUSDT" in session.subscribed_topics(Link.LINEAR_2)  # linear is still full
    assert session.ops(Link.LINEAR, "unsubscribe") == []  # nothing moved off the first connection


def test_every_shard_counts_against_the_dial_budget() -> None:
    session = Session(Config(timings=Timings(dial_budget=1, **QUIET_OK)), auto_connect=True)
    session.start()
    for i in range(1300):
        session.core.track(f"SYM{i:04d}USDT")
    session.pump()
    assert [action.link for _, action in session.dials] == [Link.LINEAR]  # the second waits its turn
    session.advance(301.0)
    assert [action.link for _, action in session.dials] == [Link.LINEAR, Link.LINEAR_2]


# ------------------------------------------------------------------------------------ jitter, determinism


def auth_waits(seed: int) -> list[float]:
    session = Session(Config(credentials=CREDS, categories=(), seed=seed))
    session.auth_ok = False
    session.start()
    session.up(Link.PRIVATE)
    for _ in range(5):
        session.advance(session.of(AuthFailed)[-1].retry_in)
        session.up(Link.PRIVATE)
    return [e.retry_in for e in session.of(AuthFailed)]


def test_auth_refusals_back_off_with_jitter_that_the_seed_decides() -> None:
    waits = auth_waits(seed=1)
    t = Timings()
    for n, wait in enumerate(waits):
        ceiling = min(t.auth_backoff_cap, t.auth_backoff_base * 2**n)
        assert ceiling / 2 <= wait <= ceiling
    assert waits[0] >= 60.0  # a bad key never hammers the venue
    assert auth_waits(seed=1) == waits  # deterministic
    assert auth_waits(seed=2) != waits  # a fleet with one bad clock does not retry in lock-step
    assert len({round(w, 6) for w in waits[-3:]}) == 3  # not stuck at exactly the cap


def test_the_same_seed_gives_the_same_events_with_retries_and_shards() -> None:
    def run() -> list[Any]:
        sim = simulation(seed=9)
        sim.exchange.fail_subscribe("tickers.ETHUSDT", n=3)
        sim.exchange.open_position("ETHUSDT", side="Buy", size="1", price="3500")
        sim.advance(60.0)
        return [(type(e).__name__, e.at, getattr(e, "retry_in", None)) for e in sim.events]

    assert run() == run()


# ----------------------------------------------------------------------------- quiet topics, silent links


def ticker(symbol: str, cs: int, kind: str = "delta", mark: str = "100") -> dict[str, Any]:
    return {
        "topic": f"tickers.{symbol}",
        "type": kind,
        "ts": 1_767_225_600_000 + cs,
        "cs": cs,
        "data": {"symbol": symbol, "markPrice": mark},
    }


def two_tickers(**timings: Any) -> Session:
    """A LIVE linear link with BTCUSDT and ETHUSDT pinned and confirmed (no ping deadline in the way)."""
    session = Session(Config(timings=Timings(ping_interval=1e6, **timings)), auto_connect=True)
    session.start()
    session.core.track("BTCUSDT")
    session.core.track("ETHUSDT")
    session.pump()
    assert sorted(session.subscribed_topics(Link.LINEAR)) == ["tickers.BTCUSDT", "tickers.ETHUSDT"]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        session.push(Link.LINEAR, ticker(symbol, 1, "snapshot"))
    return session


def run_for(session: Session, seconds: float, *symbols: str, step: float = 0.1) -> None:
    """Advance `seconds`, the venue pushing a delta of each of `symbols` every `step`."""
    end = session.now + seconds
    cs = int(session.now * 1000) + 2
    while session.now + step <= end + 1e-9:
        session.advance(step)
        cs += 1
        for symbol in symbols if Link.LINEAR in session.open else ():
            session.push(Link.LINEAR, ticker(symbol, cs))


def test_a_ticker_that_goes_quiet_on_a_live_link_is_resubscribed_for_a_fresh_snapshot() -> None:
    from bybit_hybrid_core import TopicReset

    session = two_tickers()
    run_for(session, 4.9, "BTCUSDT", "ETHUSDT")
    run_for(session, 5.2, "BTCUSDT")  # ETHUSDT stops pushing; the link itself is busy
    (reset,) = session.of(TopicReset)
    assert (reset.topic, reset.remedy, reset.link) == ("tickers.ETHUSDT", "resubscribe", Link.LINEAR)
    assert "no push" in reset.reason
    assert session.ops(Link.LINEAR, "unsubscribe")[-1]["args"] == ["tickers.ETHUSDT"]
    assert session.subscribed_topics(Link.LINEAR)[-1] == "tickers.ETHUSDT"
    session.push(Link.LINEAR, ticker("ETHUSDT", int(session.now * 1000) + 1, "snapshot"))  # the fresh one
    run_for(session, 30.0, "BTCUSDT", "ETHUSDT")
    assert len(session.of(TopicReset)) == 1 and not session.of(LinkDown)  # healed, no redial


def test_a_ticker_still_quiet_after_its_resubscribe_gets_the_link_redialled() -> None:
    from bybit_hybrid_core import TopicReset

    session = two_tickers()
    run_for(session, 12.0, "BTCUSDT")
    resets = session.of(TopicReset)
    assert [(r.topic, r.remedy) for r in resets] == [
        ("tickers.ETHUSDT", "resubscribe"),
        ("tickers.ETHUSDT", "redial"),
    ]
    assert resets[1].at - resets[0].at >= Timings().topic_quiet_after
    (down,) = session.of(LinkDown)
    assert down.link is Link.LINEAR and "tickers.ETHUSDT" in down.reason
    assert session.hangups and Link.LINEAR in {a.link for _, a in session.hangups}


def test_a_silent_link_carrying_tickers_is_half_open_within_seconds_not_at_the_pong_deadline() -> None:
    session = two_tickers()
    run_for(session, 3.0, "BTCUSDT", "ETHUSDT")
    went_silent = session.now
    session.advance(10.0)  # nothing at all arrives (pings are far away: ping_interval is huge here)
    (down,) = session.of(LinkDown)
    assert "half-open" in down.reason
    assert down.at - went_silent <= Timings().silent_link_after + 0.5


def test_silence_on_a_link_without_tickers_proves_nothing() -> None:
    session = Session(Config(timings=Timings(ping_interval=1e6)), auto_connect=True)
    session.start()
    session.core.subscribe("publicTrade.BTCUSDT")  # trades push only when somebody trades
    session.pump()
    session.advance(120.0)
    assert not session.of(LinkDown)


def test_the_watchdog_can_be_switched_off() -> None:
    session = two_tickers(topic_quiet_after=float("inf"), silent_link_after=float("inf"))
    session.advance(600.0)
    assert not session.of(LinkDown)


# ------------------------------------------------------------------------------------- the wall clock


def test_after_clock_is_told_the_wall_moved_auth_expires_and_rest_timestamps_follow_it() -> None:
    from bybit_hybrid_core import FetchPositions
    from helpers import WALL_MS

    session = Session(Config(credentials=CREDS, categories=()), auto_connect=True)
    session.start()
    (auth,) = session.ops(Link.PRIVATE, "auth")
    assert auth["args"][1] == WALL_MS + Timings().auth_expires_ms
    session.advance(100.0)
    stepped = WALL_MS + 3_600_000  # the laptop slept an hour: monotonic time did not see it
    session.core.clock(session.now, stepped)
    session.actions.clear()
    session.drop(Link.PRIVATE)
    session.advance(2.0)  # redial, handshake, auth, subscribe, snapshot
    auth = session.ops(Link.PRIVATE, "auth")[-1]
    signed_at = auth["args"][1] - Timings().auth_expires_ms  # the redial came after a jittered backoff
    assert stepped <= signed_at <= stepped + 2_000
    fetch = next(a for a in session.actions if isinstance(a, FetchPositions))
    stamp = int(dict(fetch.request.headers)["X-BAPI-TIMESTAMP"])
    assert stepped <= stamp <= stepped + 2_000


def test_clock_before_start_is_a_usage_error() -> None:
    from bybit_hybrid_core import HybridCore, LocalProtocolError

    core = HybridCore(Config())
    try:
        core.clock(0.0, 1)
    except LocalProtocolError as exc:
        assert "start" in str(exc)
    else:
        raise AssertionError("clock() before start() must raise")


def test_a_snapshot_retry_after_clock_is_signed_with_the_corrected_time() -> None:
    from bybit_hybrid_core import FetchPositions, SnapshotFailed
    from helpers import WALL_MS

    session = Session(Config(credentials=CREDS, categories=()), auto_connect=True)
    session.start()
    fetch = next(a for a in session.actions if isinstance(a, FetchPositions))
    stepped = WALL_MS + 7_200_000
    session.core.clock(session.now, stepped)
    session.actions.clear()
    session.core.positions_snapshot(fetch.request, 503, b"busy", session.now)
    session.pump()
    (failed,) = session.of(SnapshotFailed)
    session.advance(failed.retry_in)
    retry = next(
        a
        for a in session.actions
        if isinstance(a, FetchPositions) and a.request.settle_coin == fetch.request.settle_coin
    )
    stamp = int(dict(retry.request.headers)["X-BAPI-TIMESTAMP"])
    assert stepped <= stamp <= stepped + int(failed.retry_in * 1000) + 1  # no reconnect needed
