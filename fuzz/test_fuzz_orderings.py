"""Fuzzing message orderings: a hypothesis state machine drives a Simulation (HybridCore + FakeExchange).

Rules open, grow, shrink, flip and close positions (one-way and hedge mode), move marks, pin tickers, inject
every fault of the FakeExchange, delay or fail the REST snapshot, and let time pass. Every step is recorded
as data (`scenario.Step`), so the whole run is replayed at the end to check determinism.

Invariants after every step: nothing raised; no private subscribe before the auth ack and every request
within Bybit's limits (the exchange's record); no frame on a closed link (the network's record); dials within
the core's budget; per-position `seq` never decreases in emitted events; no poisoned value (a bare, huge,
negative or non-finite number) ever reaches `positions()` or an event's size, mark or PnL.
Invariants after healing and a quiet period (the `heal_and_check` rule, and at the end): the core's positions
equal the exchange's; the ticker subscriptions equal the open positions' symbols plus pins, on the links
that were up all along (a refused ticker a position needs is retried on the same connection: healing only
waits, it never reconnects by hand); each open position's last `PositionUpdate` carries the exchange's
latest mark; and over a further quiet window every open position's ticker keeps arriving and no update is
stale (the mark is live, not frozen). And at the end: the same steps on a new Simulation give the same
events.

CI runs the `ci` profile; `python fuzz/run_long.py` runs the `long` one (see docs/testing.md).
"""

from __future__ import annotations

import signal
from decimal import Decimal
from types import FrameType
from typing import Any

import msgspec
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from scenario import DATA_FAULTS, FAILURES, KINDS, LINK_FAULTS, SERVICE_FAULTS, SYMBOLS, Step, apply, new_sim

from bybit_hybrid_core import (
    Event,
    LinkDown,
    Mode,
    ModeChanged,
    PositionClosed,
    PositionOpened,
    PositionUpdate,
    TickerUpdate,
    TopicReset,
)
from bybit_hybrid_core.testing import Simulation

# Wall-clock watchdogs: a healthy step takes milliseconds, healing (up to 20 virtual minutes) and the replay
# about a second; a livelock fails fast instead of hanging the run (and shrinks in reasonable time).
STEP_SECONDS = 2
HEAL_SECONDS = 20
REPLAY_SECONDS = 60
QUIET = 75.0  # after healing: a half-open link is noticed within 30 s (ping 20 + pong 10), then the
# resync closes what vanished and the ticker release grace (30 s) runs: both, one after the other, plus margin
HEAL_LIMIT = 1_200.0  # auth back-off may have grown to its 900 s cap
WINDOW = 20.0  # after healing: every open position's ticker arrives and nothing is stale this long
LIMIT = Decimal("1e18")  # no price, size or PnL of a real market is this large (the codec's bound)

symbols = st.sampled_from(SYMBOLS)


class Hang(Exception):
    """A step ran past its wall-clock watchdog: a livelock in the core or the simulation."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang("a step ran past its wall-clock watchdog (see STEP_SECONDS)")


class Orderings(RuleBasedStateMachine):
    ROLLOUT = False  # the rollout machine (test_fuzz_rollout.py) runs the same rules with a rollout config

    def __init__(self) -> None:
        super().__init__()
        self.sim: Simulation | None = None
        self.steps: list[Step] = []
        self.pins: dict[tuple[str, str], int] = {}
        self.checked = 0
        self.seqs: dict[tuple[str, str, int], int] = {}

    # --------------------------------------------------------------------------------------- driving

    @initialize(
        seed=st.integers(0, 2**16),
        latency=st.sampled_from([0.001, 0.02, 0.15]),
        opened=st.lists(
            st.tuples(symbols, st.sampled_from(["Buy", "Sell"]), st.integers(1, 400)), max_size=2
        ),
    )
    def start(self, seed: int, latency: float, opened: list[tuple[tuple[str, str], str, int]]) -> None:
        self.seed, self.latency = seed, latency
        self.sim = self._guarded(lambda: new_sim(seed, latency, self.ROLLOUT))
        for where, side, lots in opened:
            self.do("order", *where, side, lots, 0)
        self.do("advance", 2.0)

    def do(self, name: str, *args: Any) -> None:
        step: Step = (name, args)
        self.steps.append(step)
        assert self.sim is not None
        sim = self.sim
        self._guarded(lambda: apply(sim, step))

    def _guarded(self, run: Any, seconds: int = STEP_SECONDS) -> Any:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(seconds)
        try:
            return run()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    @rule(
        where=symbols,
        side=st.sampled_from(["Buy", "Sell"]),
        lots=st.integers(1, 400),
        idx=st.sampled_from([0, 0, 1, 2]),
    )
    def order(self, where: tuple[str, str], side: str, lots: int, idx: int) -> None:
        self.do("order", *where, side, lots, idx)

    @rule(where=symbols, idx=st.sampled_from([0, 1, 2]))
    def close(self, where: tuple[str, str], idx: int) -> None:
        self.do("close", *where, idx)

    @rule(where=symbols)
    def flip(self, where: tuple[str, str]) -> None:
        self.do("flip", *where)

    @rule(where=symbols, on=st.booleans())
    def hedge_mode(self, where: tuple[str, str], on: bool) -> None:
        self.do("hedge", *where, on)

    @rule(where=symbols, pct=st.sampled_from(["-5", "-0.3", "0.01", "0.4", "7"]))
    def move_market(self, where: tuple[str, str], pct: str) -> None:
        self.do("mark", *where, pct)

    @rule(where=symbols)
    def track(self, where: tuple[str, str]) -> None:
        self.pins[where] = self.pins.get(where, 0) + 1
        self.do("track", *where)

    @rule(where=symbols)
    def untrack(self, where: tuple[str, str]) -> None:
        if self.pins.get(where):
            self.pins[where] -= 1
            self.do("untrack", *where)

    # Faults come in three rules so that they are drawn about as often as trades and time.
    @rule(name=st.sampled_from(LINK_FAULTS), kind=st.sampled_from(KINDS), n=st.integers(1, 3))
    def link_fault(self, name: str, kind: str, n: int) -> None:
        self.do("fault", name, kind, n)

    @rule(name=st.sampled_from(DATA_FAULTS), kind=st.sampled_from(KINDS), n=st.integers(1, 3))
    def data_fault(self, name: str, kind: str, n: int) -> None:
        self.do("fault", name, kind, n)

    @rule(name=st.sampled_from(SERVICE_FAULTS), n=st.integers(1, 3))
    def service_fault(self, name: str, n: int) -> None:
        self.do("fault", name, "all", n)

    @rule(seconds=st.sampled_from([0.0, 3.0, 12.0]))
    def snapshot_delay(self, seconds: float) -> None:
        self.do("rest_delay", seconds)

    @rule(seconds=st.sampled_from([0.001, 0.01, 0.2, 1.0, 4.0, 11.0, 25.0]))
    def advance(self, seconds: float) -> None:
        self.do("advance", seconds)

    @rule()
    def heal_and_check(self) -> None:
        self._heal_and_check()

    # ------------------------------------------------------------------------------------ invariants

    @invariant()
    def protocol_rules_hold(self) -> None:
        if self.sim is None:
            return
        assert self.sim.problems() == [], self.sim.problems()[:5]

    @invariant()
    def dials_within_budget(self) -> None:
        if self.sim is None:
            return
        budget = self.sim.config.timings.dial_budget
        times = [t for t, _ in self.sim.dials]
        for i, t in enumerate(times):
            window = [u for u in times[: i + 1] if u > t - self.sim.config.timings.dial_window]
            assert len(window) <= budget, (
                f"{len(window)} dials within {self.sim.config.timings.dial_window} s"
            )

    @invariant()
    def no_bad_value_is_ever_applied(self) -> None:
        if self.sim is None:
            return
        for key, position in self.sim.core.positions().items():
            assert 0 < position.size < LIMIT and 0 < position.avg_price < LIMIT, (key, position)
        for emitted in self.sim.events[self.checked :]:
            if isinstance(emitted, PositionUpdate):
                assert 0 < emitted.size < LIMIT, emitted
                assert emitted.mark_price is None or 0 < emitted.mark_price < LIMIT, emitted
                pnl = emitted.unrealised_pnl
                assert pnl is None or (pnl.is_finite() and abs(pnl) < LIMIT), emitted

    @invariant()
    def seq_never_decreases(self) -> None:
        if self.sim is None:
            return
        for emitted in self.sim.events[self.checked :]:
            if isinstance(emitted, TopicReset) and emitted.remedy == "snapshot":
                self.seqs.clear()  # a reset position book: the REST snapshot's seq may be lower, once
            key, seq = _key_seq(emitted)
            if key is not None:
                assert seq >= self.seqs.get(key, -1), f"seq went back: {emitted}"
                self.seqs[key] = seq
        self.checked = len(self.sim.events)

    def teardown(self) -> None:
        if self.sim is None:
            return
        self._heal_and_check()
        downs = sum(isinstance(e, LinkDown) for e in self.sim.events)
        event(f"links went down: {'0' if not downs else '1-5' if downs <= 5 else '6+'}")
        replay = self._guarded(lambda: self._replay(), REPLAY_SECONDS)
        assert replay == msgspec.json.encode(self.sim.events), "same seed and steps gave different events"

    # -------------------------------------------------------------------------------------- helpers

    def _heal_and_check(self) -> None:
        assert self.sim is not None
        sim = self.sim
        self._guarded(lambda: _heal(sim), HEAL_SECONDS)
        self.steps.append(("heal", ()))
        assert sim.core.positions() == sim.exchange.positions()
        for category in ("linear", "inverse"):
            held = {f"tickers.{s}" for (c, s, _) in sim.exchange.positions() if c == category}
            pinned = {f"tickers.{s}" for (c, s), n in self.pins.items() if n and c == category}
            tickers = {t for t in sim.exchange.subscriptions(category) if t.startswith("tickers.")}
            assert tickers == held | pinned, (category, tickers, held, pinned)
        event(f"open positions when checked: {min(len(sim.exchange.positions()), 3)}+")
        updates = sim.last_updates()
        for key, position in sim.exchange.positions().items():
            mark = sim.exchange.mark(position.symbol, category=position.category)
            assert updates[key].mark_price == mark, updates[key]
        # Never frozen: over a quiet window every open position's ticker keeps arriving, never stale.
        first = len(sim.events)
        self._guarded(lambda: sim.advance(WINDOW), HEAL_SECONDS)
        self.steps.append(("advance", (WINDOW,)))
        window = sim.events[first:]
        for category, symbol, _ in sim.exchange.positions():
            heard = [
                e
                for e in window
                if isinstance(e, TickerUpdate) and (e.category, e.symbol) == (category, symbol)
            ]
            assert heard, f"{category} {symbol}: no ticker for {WINDOW} s after healing"
        stale = [e for e in window if isinstance(e, PositionUpdate) and e.stale]
        assert not stale, stale[:3]

    def _replay(self) -> bytes:
        sim = new_sim(self.seed, self.latency, self.ROLLOUT)
        for step in self.steps:
            if step[0] == "heal":
                _heal(sim)
            else:
                apply(sim, step)
        return msgspec.json.encode(sim.events)


def _heal(sim: Simulation) -> None:
    """Heal every fault, wait until every link the core has is live again and no refused ticker is still
    waiting for its retry, then a quiet period. Nothing is reconnected by hand: the core must get there."""
    sim.calm()
    if sim.events_of(ModeChanged):  # `core.mode` is the driver now; a switch may still be pending
        sim.core.set_mode(Mode.PRODUCTION)  # the checks below are the stream's: it drives once current
    sim.core.resume()  # an automatic rollback (the rollout machine's) ends: no-op otherwise
    _until_live(sim)
    sim.advance(sim.config.timings.ack_timeout)  # a refusal still in flight arrives (or its ack times out)
    deadline = sim.now + HEAL_LIMIT
    while any(s.retrying for s in sim.core.status().values()) and sim.now < deadline:
        sim.advance(5.0)  # the retry backoff (at most topic_retry_cap) runs out, on the same connection
        _until_live(sim)
    assert not any(s.failed for s in sim.core.status().values()), "a needed topic was given up for good"
    sim.advance(QUIET)
    sim.settle()


def _until_live(sim: Simulation) -> None:
    deadline = sim.now + HEAL_LIMIT
    while any(s.state not in ("LIVE", "IDLE") for s in sim.core.status().values()) and sim.now < deadline:
        sim.advance(15.0)


def _key_seq(event: Event) -> tuple[tuple[str, str, int] | None, int]:
    match event:
        case PositionUpdate(seq=seq):
            return event.key, seq
        case PositionOpened(position=position):
            return position.key, position.seq
        case PositionClosed(position=position, seq=seq):
            return position.key, seq
    return None, 0


TestOrderings = Orderings.TestCase
TestOrderings.settings = settings(settings.default, stateful_step_count=30, database=FAILURES)
