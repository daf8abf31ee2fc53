"""Fuzzing the rollout: the orderings machine (`test_fuzz_orderings.py`, every rule and invariant) on a core
with the automatic rollback on (after 30 s with every link down, back after a minute healthy), plus rules
that switch the rollout mode at run time and take links down for a while.

Invariant after every step: the application's view, replayed from the delivered `PositionOpened`,
`PositionUpdate` and `PositionClosed`, never opens a key twice, updates or closes a key it does not hold.
After healing (which switches back to production and resumes): that view equals the exchange's positions.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule
from scenario import FAILURES
from test_fuzz_orderings import Orderings

from bybit_hybrid_core import PositionClosed, PositionKey, PositionOpened, PositionUpdate, RolledBack

MODES = [
    ("rest", 1.0),
    ("canary", 1.0),
    ("parallel", 1.0),
    ("cutover", 0.5),
    ("cutover", 0.0),
    ("production", 1.0),
]


class RolloutOrderings(Orderings):
    ROLLOUT = True

    def __init__(self) -> None:
        super().__init__()
        self.view: dict[PositionKey, tuple[str, Decimal]] = {}
        self.viewed = 0

    @rule(mode=st.sampled_from(MODES))
    def switch_mode(self, mode: tuple[str, float]) -> None:
        self.do("mode", *mode)

    @rule(kind=st.sampled_from(["private", "public", "all"]), seconds=st.sampled_from([5.0, 15.0, 45.0]))
    def outage(self, kind: str, seconds: float) -> None:
        self.do("outage", kind, seconds)  # "all" for 45 s: a critical verdict, an automatic rollback

    @invariant()
    def the_application_view_is_consistent(self) -> None:
        if self.sim is None:
            return
        for e in self.sim.events[self.viewed :]:
            if isinstance(e, PositionOpened):
                assert e.position.key not in self.view, f"opened twice: {e}"
                self.view[e.position.key] = (e.position.side, e.position.size)
            elif isinstance(e, PositionUpdate):
                assert e.key in self.view, f"an update of a position never opened: {e}"
                self.view[e.key] = (e.side, e.size)
            elif isinstance(e, PositionClosed):
                assert self.view.pop(e.position.key, None) is not None, f"closed while not open: {e}"
        self.viewed = len(self.sim.events)

    def _heal_and_check(self) -> None:
        super()._heal_and_check()
        assert self.sim is not None
        self.the_application_view_is_consistent()
        exchange = {k: (p.side, p.size) for k, p in self.sim.exchange.positions().items()}
        assert self.view == exchange, (self.view, exchange)
        event(f"rolled back: {bool(self.sim.events_of(RolledBack))}")


TestRolloutOrderings = RolloutOrderings.TestCase
TestRolloutOrderings.settings = settings(
    settings.default,
    stateful_step_count=20,
    max_examples=min(settings().max_examples, 25),
    database=FAILURES,
)
