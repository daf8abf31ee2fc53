"""The stream's REST fallback, the comparison polls and the clock samples: REST at a bounded rate.

* Positions: the private link down for `Rollout.positions_fallback_after` -> a REST snapshot round every
  `Rollout.poll_interval` until it is back (`FallbackStarted/Ended(what="positions")`); the rounds are the
  data plane's own (`SnapshotSync`), so their rows are reconciled like any snapshot's.
* Marks: an open position's symbol whose ticker has not spoken fresh for `Rollout.marks_fallback_after`
  -> its mark polled over `GET /v5/market/tickers` every `poll_interval` (`what="marks"`), priced by the
  join with `source="rest"`, until the ticker speaks again.
* Comparison: in production and cutover, every `Rollout.compare_interval`, the open positions' symbols whose
  stream mark is fresh are asked over REST and compared (`DivergenceBook`).
* Clock: `GET /v5/market/time` at start and every `Rollout.time_interval`.

Bounded by construction: each periodic job sends at most one request per category per period (a category
with more than `_PER_SYMBOL_MAX` symbols to ask is asked whole, in one request), and every request takes a
token from one bucket (`Rollout.rest_rate` per second, burst twice that); a job without a token waits for its
next period. Position rounds (REST polling, this fallback) pay one token per listing before they start; a
failed page asked again and a next page take one each through `RestPacer`, waiting for it. So no fault makes
the periodic requests exceed the rate (the stream's snapshot round at each private link up is not periodic).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .._config import Config, Link
from .._events import Action, Event, FallbackEnded, FallbackStarted, ProtocolProblem, RestCall, RestRequest
from .._timers import Deadlines
from .market_rest import MarketRestError, RestMark, parse_tickers, parse_time, tickers_request, time_request

__all__ = ["RestBudget", "RestFallback", "RestPacer"]

_PER_SYMBOL_MAX = 3


class RestBudget:
    """A token bucket for every periodic REST request: `rate` per second, at most `2 * rate` saved up.

    `take(now, cost)` pays for `cost` requests at once (a position round: one per listing); a cost above
    the burst is taken once the bucket is full, leaving it in debt, so the average rate still holds."""

    __slots__ = ("_at", "_rate", "_tokens", "spent")

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = 2.0 * rate
        self._at: float | None = None
        self.spent = 0

    def take(self, now: float, cost: int = 1) -> bool:
        if self._at is not None:
            self._tokens = min(2.0 * self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < min(float(cost), 2.0 * self._rate):
            return False
        self._tokens -= cost
        self.spent += cost
        return True

    def ready_at(self, cost: int = 1) -> float:
        """When `take(now, cost)` can succeed (as of the last take)."""
        short = max(0.0, min(float(cost), 2.0 * self._rate) - self._tokens)
        return (self._at or 0.0) + short / self._rate


class RestPacer:
    """Position requests that no round paid for (a failed page asked again, the next page of a listing)
    take a token each: without one they wait, in order, until the bucket has one (`deadline`). A round
    paid up front (`paid()`) goes out at once."""

    __slots__ = ("_act", "_budget", "_free", "_held")

    def __init__(self, budget: RestBudget, act: Callable[[Action], None]) -> None:
        self._budget = budget
        self._act = act
        self._free = False
        self._held: list[Action] = []

    def paid(self, start: Callable[[], None]) -> None:
        """Run `start` (which sends a round it already paid for, or one not counted: a link-up snapshot)."""
        self._free = True
        try:
            start()
        finally:
            self._free = False

    def act(self, action: Action, now: float) -> None:
        if self._free or (not self._held and self._budget.take(now)):
            self._act(action)
        else:
            self._held.append(action)

    def tick(self, now: float) -> None:
        while self._held and self._budget.take(now):
            self._act(self._held.pop(0))

    def forget(self, purpose: str) -> None:
        """Drop the held requests of a cancelled round (their answers would be ignored)."""
        self._held = [a for a in self._held if getattr(a, "request").purpose != purpose]  # noqa: B009

    def deadline(self) -> float | None:
        return self._budget.ready_at() if self._held else None


class RestFallback:
    """Schedules the fallback, comparison and clock requests, and routes their answers (see module doc).

    Args:
        dark: the symbols with an open position whose ticker is not fresh for `after` s (the join's `dark`).
        lit: the open positions' symbols whose stream mark is fresh (to compare).
        rest_mark: hand a polled mark to the join.
        compare: hand a REST mark to the comparison (category, symbol, mark, now).
        snapshot: start a snapshot round of the data plane (now, wall_ms); `snapshot_active`: one is running.
        clock: an exchange time sample (server ms, our wall ms at arrival, round trip s).
    """

    def __init__(
        self,
        config: Config,
        emit: Callable[[Event], None],
        act: Callable[[Action], None],
        ids: Callable[[], int],
        budget: RestBudget,
        *,
        dark: Callable[[float, float], list[tuple[str, str]]],
        lit: Callable[[float], list[tuple[str, str]]],
        rest_mark: Callable[[RestMark], None],
        compare: Callable[[str, str, Decimal, float], None],
        snapshot: Callable[[float, int], None],
        snapshot_active: Callable[[], bool],
        clock: Callable[[int, int, float], None],
        round_cost: int = 1,
    ) -> None:
        self._config = config
        self._emit = emit
        self._act = act
        self._ids = ids
        self.budget = budget
        self._dark, self._lit, self._rest_mark, self._compare = dark, lit, rest_mark, compare
        self._snapshot, self._snapshot_active, self._clock = snapshot, snapshot_active, clock
        self._round_cost = round_cost  # requests in one snapshot round (one per listing)
        self._timers: Deadlines[str] = Deadlines()
        self._private_down = True  # until the private link first comes up
        self.positions_active = False
        self.marks: tuple[tuple[str, str], ...] = ()  # symbols whose marks come from REST now
        self._sent: dict[int, float] = {}  # request id -> when it went out (round trips for the clock)
        self.clock_failures = 0  # time samples that failed (counted, not reported: the sample is optional)
        self.streaming = True  # the stream runs (False in mode rest: no fallback to do)
        self.comparing = True  # production / cutover compare every compare_interval

    def start(self, now: float, with_private: bool) -> None:
        self._private_down = with_private
        self._timers.set("time", now)
        self._timers.set("marks", now + self._config.rollout.poll_interval)
        self._timers.set("compare", now + self._config.rollout.compare_interval)

    # ------------------------------------------------------------------------------------- link news

    def private_down(self, now: float) -> None:
        self._private_down = True
        if self.streaming and "positions" not in self._timers:
            self._timers.set("positions", now + self._config.rollout.positions_fallback_after)

    def private_up(self, now: float) -> None:
        self._private_down = False
        self._timers.cancel("positions")
        if self.positions_active:
            self.positions_active = False
            self._emit(FallbackEnded(link=Link.PRIVATE, at=now, what="positions"))

    # ---------------------------------------------------------------------------------------- timers

    def tick(self, now: float, wall_ms: int) -> None:
        rollout = self._config.rollout
        for name in self._timers.due(now):
            if name == "positions":
                self._positions(now, wall_ms)
            elif name == "marks":
                self._marks(now)
                self._timers.set("marks", now + rollout.poll_interval)
            elif name == "compare":
                if self.comparing and self.streaming:
                    self._ask(self._lit(now), now, "comparison")
                self._timers.set("compare", now + rollout.compare_interval)
            elif name == "time":
                if self.budget.take(now):
                    self._send(time_request(self._ids(), self._config.urls.rest_base), now)
                self._timers.set("time", now + rollout.time_interval)

    def deadline(self) -> float | None:
        return self._timers.earliest()

    def queues(self) -> tuple[Deadlines[Any], ...]:
        """The timer queues behind `deadline()` (the data plane takes their earliest in one pass)."""
        return (self._timers,)

    def _positions(self, now: float, wall_ms: int) -> None:
        if not self._private_down or not self.streaming:
            return
        if not self.positions_active:
            self.positions_active = True
            after = self._config.rollout.positions_fallback_after
            reason = f"the private link is down for {after:g} s: positions polled over REST"
            self._emit(FallbackStarted(link=Link.PRIVATE, at=now, what="positions", reason=reason))
        if not self._snapshot_active() and self.budget.take(now, self._round_cost):
            self._snapshot(now, wall_ms)
        self._timers.set("positions", now + self._config.rollout.poll_interval)

    def _marks(self, now: float) -> None:
        dark = tuple(self._dark(now, self._config.rollout.marks_fallback_after)) if self.streaming else ()
        started = [s for s in dark if s not in self.marks]
        ended = [s for s in self.marks if s not in dark]
        self.marks = dark
        if ended:
            self._emit(
                FallbackEnded(
                    link=Link(ended[0][0]), at=now, what="marks", symbols=tuple(sym for _, sym in ended)
                )
            )
        if started:
            after = self._config.rollout.marks_fallback_after
            self._emit(
                FallbackStarted(
                    link=Link(started[0][0]),
                    at=now,
                    what="marks",
                    symbols=tuple(sym for _, sym in started),
                    reason=f"no fresh ticker for {after:g} s: marks polled over REST",
                )
            )
        self._ask(list(dark), now, "fallback")

    def _ask(self, symbols: list[tuple[str, str]], now: float, why: str) -> None:
        by_category: dict[str, list[str]] = {}
        for category, symbol in symbols:
            by_category.setdefault(category, []).append(symbol)
        base = self._config.urls.rest_base
        for category, names in sorted(by_category.items()):
            asks = [""] if len(names) > _PER_SYMBOL_MAX else names  # "": the whole category, one request
            for symbol in asks:
                if not self.budget.take(now):
                    return  # out of tokens: the next period asks again
                self._send(tickers_request(self._ids(), base, category, symbol), now)

    def _send(self, action: RestCall, now: float) -> None:
        self._sent[action.request.id] = now
        self._act(action)

    # --------------------------------------------------------------------------------------- answers

    def answer(self, request: RestRequest, status: int, body: bytes, now: float, wall_ms: int) -> None:
        sent = self._sent.pop(request.id, None)
        if sent is None:
            return  # not ours, or answered twice
        if request.purpose == "time":
            # The clock sample is optional (pongs estimate the offset too) and the next one comes in time, so
            # a failed one is counted in `metrics().rollout`, not reported: a REST base that is not Bybit's
            # must not read as a broken stream. A failed tickers answer (below) is a problem: marks need it.
            try:
                self._clock(parse_time(status, body), wall_ms, now - sent)
            except MarketRestError:
                self.clock_failures += 1
            return
        try:
            marks = parse_tickers(request, status, body, now)
        except MarketRestError as exc:
            detail = f"REST tickers {request.category}: {exc}"
            self._emit(ProtocolProblem(link=Link(request.category or "linear"), at=now, detail=detail[:300]))
            return
        dark = set(self.marks)
        for mark in marks:
            if (mark.category, mark.symbol) in dark:
                self._rest_mark(mark)
            else:
                self._compare(mark.category, mark.symbol, mark.mark, now)
