"""Who drives the application's positions: the stream, REST polling, or a share of each (issue "roll out").

Theory of operation. Two pipelines can state a position. The *stream* pipeline is the rest of the data plane
(WebSocket pushes, tickers, the join, REST only as snapshot and fallback). The *REST* pipeline
(`RestPositions`) polls `GET /v5/position/list` every `Rollout.poll_interval`, keeps its own book, and states
what changed since its last poll, priced at the mark the answer carried (`source="rest"`). Per position key
one of them *drives* (`Router.rest_drives`): REST in `rest`, `canary`, `parallel` and during a rollback;
in `cutover` the symbols outside `Rollout.share` (a stable hash); the stream otherwise.

The application sees only the driver's position events, through one *view*: what it was told is open.
Every event is checked against the view, so a hand-over (a mode switch, a rollback, a return) never repeats
or loses one: an update for a key the view lacks is preceded by a `PositionOpened`; a close for a key it
lacks is dropped; on a hand-over the new driver's book is compared with the view and the differences are
delivered (opened, closed, and a fresh `PositionUpdate` for every open key). A hand-over *to* REST waits
for a fresh completed poll, and one *to* the stream for a completed stream snapshot, so the new driver
never speaks from old state; until then the old driver keeps driving.

The stream's market and account events (tickers, books, trades, orders, executions, wallet) reach the
application in `cutover` and `production`; in `canary` and `parallel` the stream is only monitored.
Link, health and problem events always pass.

Divergence. Every REST mark (a poll row's `markPrice` in `parallel`; a tickers answer in `production` and
`cutover`, every `Rollout.compare_interval`) is compared with the stream's mark of the symbol at that
moment, when the stream's is fresh: a `MarksCompared` event, counted per symbol (`DivergenceBook`).

Rollback. In `production`/`cutover` with `Rollout.auto_rollback`, a critical verdict rolls every position
back to REST (`RolledBack` with the reasons, at once; REST drives from its first fresh poll); after
`Rollout.return_after` seconds without a critical verdict, or `resume()`, the stream drives again
(`RollbackEnded`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from random import Random
from typing import Any

from .._config import Config, Link, Mode
from .._events import (
    Action,
    Event,
    MarksCompared,
    ModeChanged,
    Position,
    PositionClosed,
    PositionKey,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    RestRequest,
    RollbackEnded,
    RolledBack,
)
from .._health import DivergenceMetrics, SymbolDivergence
from .._timers import Deadlines
from .account import OwnMark, is_flat
from .fallback import RestBudget, RestPacer
from .join import position_fields, position_update
from .sync import CompletedSnapshot, SnapshotSync

__all__ = ["DivergenceBook", "RestPositions", "Router", "in_share"]

_POSITION_EVENTS = (PositionOpened, PositionUpdate, PositionClosed)
_WATCHED = (PositionUpdate, PositionClosed, PositionsSynced)  # the core's STREAM_HEALTH_EVENTS
_HUNDRED = Decimal(100)


def in_share(symbol: str, share: float) -> bool:
    """Whether `symbol` is among the `share` of symbols the stream drives in cutover: a stable hash, so a
    symbol keeps its side across restarts, and growing the share only moves symbols onto the stream."""
    if share >= 1.0:
        return True
    point = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big") / 2.0**64
    return point < share


# ------------------------------------------------------------------------------------------ divergence


class _Tally:
    __slots__ = ("comparisons", "divergences", "last_pct", "max_pct")

    def __init__(self) -> None:
        self.comparisons = 0
        self.divergences = 0
        self.max_pct = Decimal(0)
        self.last_pct = Decimal(0)


class DivergenceBook:
    """Comparisons of REST marks with the stream's, per symbol and overall (for `metrics()` and health)."""

    __slots__ = ("_by_symbol", "threshold")

    def __init__(self, threshold: Decimal) -> None:
        self.threshold = threshold
        self._by_symbol: dict[tuple[str, str], _Tally] = {}

    def compare(
        self, link: Link, category: str, symbol: str, stream: Decimal, rest: Decimal, now: float
    ) -> MarksCompared:
        pct = abs(stream - rest) / rest * _HUNDRED
        diverged = pct > self.threshold
        tally = self._by_symbol.get((category, symbol))
        if tally is None:
            tally = self._by_symbol[(category, symbol)] = _Tally()
        tally.comparisons += 1
        tally.divergences += diverged
        tally.max_pct = max(tally.max_pct, pct)
        tally.last_pct = pct
        return MarksCompared(
            link=link,
            at=now,
            category=category,
            symbol=symbol,
            stream_mark=stream,
            rest_mark=rest,
            divergence_pct=pct.quantize(Decimal("0.0001")),
            diverged=diverged,
        )

    def metrics(self) -> DivergenceMetrics:
        rows = {
            f"{category}:{symbol}": SymbolDivergence(
                comparisons=t.comparisons, divergences=t.divergences, max_pct=t.max_pct, last_pct=t.last_pct
            )
            for (category, symbol), t in sorted(self._by_symbol.items())
        }
        return DivergenceMetrics(
            comparisons=sum(r.comparisons for r in rows.values()),
            divergences=sum(r.divergences for r in rows.values()),
            max_pct=max((r.max_pct for r in rows.values()), default=Decimal(0)),
            threshold_pct=self.threshold,
            by_symbol=rows,
        )


# -------------------------------------------------------------------------------------- REST pipeline


class RestPositions:
    """Positions polled over REST, on their own book: what REST polling would tell the application.

    Args:
        emit: where its position events go (the `Router`); its `SnapshotFailed`s go there too.
        on_mark: every row's mark, for the comparison against the stream ((category, symbol, mark, now)).
        budget: the one REST token bucket; a poll round pays one token per request (`round_cost`) and waits
            for them when the bucket is short.
    """

    def __init__(
        self,
        config: Config,
        emit: Callable[[Event], None],
        act: Callable[[Action], None],
        rng: Random,
        ids: Callable[[], int],
        on_mark: Callable[[str, str, Decimal, float], None],
        budget: RestBudget,
        round_cost: int,
        pacer: RestPacer,
    ) -> None:
        self._config = config
        self._budget, self._round_cost, self._pacer = budget, round_cost, pacer
        self._emit = emit
        self._on_mark = on_mark
        self._sync = SnapshotSync(config, emit, act, rng, purpose="poll", ids=ids)
        self._held: dict[PositionKey, tuple[Position, OwnMark | None]] = {}
        self._timers: Deadlines[str] = Deadlines()
        self.running = False
        self.rounds = 0  # completed polls (every category), since start
        self._round_started = 0.0

    def start(self, now: float, wall_ms: int) -> None:
        """Poll now, then every `poll_interval` (a no-op when already polling)."""
        if self.running:
            return
        self.running = True
        self._poll(now, wall_ms)

    def stop(self) -> None:
        """Stop polling (its book is kept, but a later start needs a fresh poll before it may drive)."""
        self.running = False
        self.rounds = 0
        self._sync.cancel()
        self._pacer.forget("poll")
        self._timers.clear()

    def get(self, key: PositionKey) -> Position | None:
        held = self._held.get(key)
        return None if held is None else held[0]

    def keys(self) -> list[PositionKey]:
        return list(self._held)

    def answer(self, request: RestRequest, status: int, body: bytes, now: float, wall_ms: int) -> None:
        done = self._sync.answer(request, status, body, now, wall_ms)
        if done is not None:
            self._apply(done, now)
        if not self._sync.active and self.running and "poll" not in self._timers:
            self.rounds += 1
            self._timers.set("poll", max(now, self._round_started + self._config.rollout.poll_interval))

    def replay(self, key: PositionKey, now: float) -> None:
        """State the held position again (a hand-over to REST)."""
        held = self._held.get(key)
        if held is not None:
            self._emit(self._update(held[0], held[1], now))

    def tick(self, now: float, wall_ms: int) -> None:
        self._sync.tick(now, wall_ms)
        for _ in self._timers.due(now):
            if self.running:
                self._poll(now, wall_ms)

    def deadline(self) -> float | None:
        own, sync = self._timers.earliest(), self._sync.deadline()
        if own is None or (sync is not None and sync < own):
            return sync
        return own

    def queues(self) -> tuple[Deadlines[Any], ...]:
        """The timer queues behind `deadline()` (the data plane takes their earliest in one pass)."""
        return (self._timers, *self._sync.queues())

    def _poll(self, now: float, wall_ms: int) -> None:
        if not self._budget.take(now, self._round_cost):
            self._timers.set("poll", max(self._budget.ready_at(self._round_cost), now + 0.001))
            return  # Rollout.rest_rate holds for polls too: the round goes out once it is paid for
        self._round_started = now
        self._pacer.paid(lambda: self._sync.start(now, wall_ms, 0))

    def _update(self, position: Position, mark: OwnMark | None, now: float) -> PositionUpdate:
        price, ts, at = (None, None, None) if mark is None else mark  # no mark in the row: stale
        return position_update(Link.PRIVATE, now, position, price, ts, at, "snapshot", mark is None, "rest")

    def _apply(self, done: CompletedSnapshot, now: float) -> None:
        listed: dict[PositionKey, tuple[Position, OwnMark | None]] = {}
        for position, mark in done.rows:
            if not is_flat(position):
                listed[position.key] = (position, mark)
        for key, (position, mark) in listed.items():
            before = self._held.get(key)
            if before is None:
                self._emit(PositionOpened(link=Link.PRIVATE, at=now, position=position, cause="snapshot"))
            if mark is not None:
                self._on_mark(position.category, position.symbol, mark[0], now)
            if (
                before is None
                or _price(before[1]) != _price(mark)
                or position_fields(before[0]) != position_fields(position)
            ):
                self._emit(self._update(position, mark, now))
            self._held[key] = (position, mark)
        for key in [k for k in self._held if k[0] == done.category and k not in listed]:
            before_position = self._held.pop(key)[0]
            self._emit(
                PositionClosed(
                    link=Link.PRIVATE,
                    at=now,
                    position=before_position,
                    cause="snapshot",
                    seq=before_position.seq,
                )
            )


def _price(mark: OwnMark | None) -> Decimal | None:
    return None if mark is None else mark[0]


# ------------------------------------------------------------------------------------------- the router


class Router:
    """The application's view of positions and which pipeline drives each key (see the module doc).

    Args:
        deliver: the core's emit: what reaches the application.
        stream_get: the stream book's position at a key; `stream_keys`: its open keys.
        stream_replay: make the stream state a key's `PositionUpdate` again.
        rest: the REST pipeline; `watch`: sees the stream's position events, delivered or not (health).
    """

    def __init__(
        self,
        config: Config,
        deliver: Callable[[Event], None],
        stream_get: Callable[[PositionKey], Position | None],
        stream_keys: Callable[[], list[PositionKey]],
        stream_replay: Callable[[PositionKey, float], None],
        stream_current: Callable[[], bool],
        rest: RestPositions,
        watch: Callable[[Event], None],
    ) -> None:
        self._config = config
        self._deliver = deliver
        self._stream_get = stream_get
        self._stream_keys = stream_keys
        self._stream_replay = stream_replay
        self._stream_current = stream_current
        self._rest = rest
        self._watch = watch
        self.mode = config.mode
        self.share = config.rollout.share
        self.view: dict[PositionKey, Position] = {}
        # what drives now, and what is wanted once its pipeline is ready (None: nothing pending)
        self._rest_all = self.mode.rest_driven
        self._target: tuple[Mode, float, bool] | None = None  # (mode, share, rolled back)
        self.rolled_back_at: float | None = None
        self.healthy_since: float | None = None
        self.reasons: tuple[str, ...] = ()

    # -------------------------------------------------------------------------------------- driving

    def rest_drives(self, symbol: str) -> bool:
        if self._rest_all:
            return True
        return self.mode is Mode.CUTOVER and not in_share(symbol, self.share)

    @property
    def delivers_stream_data(self) -> bool:
        """The stream's market and account events reach the application."""
        return self.mode in (Mode.CUTOVER, Mode.PRODUCTION)

    @property
    def needs_rest(self) -> bool:
        """The REST pipeline must poll: it drives something now, or will once a hand-over is ready."""
        if self._rest_all or (self.mode is Mode.CUTOVER and self.share < 1.0):
            return True
        if self._target is None:
            return False
        mode, share, rolled_back = self._target
        return mode.rest_driven or rolled_back or (mode is Mode.CUTOVER and share < 1.0)

    # --------------------------------------------------------------------------------------- events

    def from_stream(self, event: Event) -> None:
        if isinstance(event, _WATCHED):
            self._watch(event)  # health watches the stream, whatever is delivered
        if isinstance(event, _POSITION_EVENTS):
            key = event.key if isinstance(event, PositionUpdate) else event.position.key
            if not self.rest_drives(key[1]):
                self._take(event, key, self._stream_get)
            return
        if isinstance(event, PositionsSynced):
            if self.delivers_stream_data:
                self._deliver(event)
            return
        self._deliver(event)

    def from_rest(self, event: Event) -> None:
        if isinstance(event, _POSITION_EVENTS):
            key = event.key if isinstance(event, PositionUpdate) else event.position.key
            if self.rest_drives(key[1]):
                self._take(event, key, self._rest.get)
            return
        self._deliver(event)  # SnapshotFailed of a poll: the operator must see REST failing

    def _take(self, event: Event, key: PositionKey, get: Callable[[PositionKey], Position | None]) -> None:
        """Deliver one of the driver's position events, consistently with the view."""
        if isinstance(event, PositionClosed):
            if self.view.pop(key, None) is not None:
                self._deliver(event)
            return
        held = get(key)
        if key not in self.view:
            opened = event.position if isinstance(event, PositionOpened) else held
            if opened is None:
                return
            self.view[key] = opened
            self._deliver(
                event if isinstance(event, PositionOpened)
                else PositionOpened(link=event.link, at=event.at, position=opened, cause="snapshot")
            )  # fmt: skip
            if isinstance(event, PositionOpened):
                return
        elif isinstance(event, PositionOpened):
            return  # already open in the view (a hand-over told it): its update follows
        if held is not None:
            self.view[key] = held
        self._deliver(event)

    # ------------------------------------------------------------------------------------- hand-over

    def set_mode(self, mode: Mode, share: float, now: float) -> None:
        previous = self.mode
        self._deliver(
            ModeChanged(link=Link.PRIVATE, at=now, mode=mode.value, previous=previous.value, share=share)
        )
        self._ask(mode, share, self.rolled_back_at is not None, now)

    def verdict(self, critical: bool, reasons: tuple[str, ...], now: float) -> None:
        """The health verdict after an input: rolls back, or counts the healthy time towards the return."""
        rollout = self._config.rollout
        if critical:
            self.healthy_since = None
            if self.rolled_back_at is None and rollout.auto_rollback and not self.mode.rest_driven:
                self.rolled_back_at = now
                self.reasons = reasons
                self._deliver(RolledBack(link=Link.PRIVATE, at=now, reasons=reasons, mode=self.mode.value))
                self._ask(self.mode, self.share, True, now)
            return
        if self.rolled_back_at is None:
            return
        if self.healthy_since is None:
            self.healthy_since = now
        if rollout.return_after is not None and now >= self.healthy_since + rollout.return_after:
            self.resume(now, "healthy")

    def return_deadline(self) -> float | None:
        """When the healthy period of a rollback ends (the core re-checks then)."""
        after = self._config.rollout.return_after
        if self.rolled_back_at is None or self.healthy_since is None or after is None:
            return None
        return self.healthy_since + after

    def resume(self, now: float, how: str = "by hand") -> bool:
        """End a rollback: the stream drives again once ready. False when not rolled back."""
        if self.rolled_back_at is None:
            return False
        since, self.rolled_back_at, self.healthy_since = self.rolled_back_at, None, None
        self._deliver(
            RollbackEnded(
                link=Link.PRIVATE, at=now, how="healthy" if how == "healthy" else "by hand",
                rolled_back_for=now - since,
            )
        )  # fmt: skip
        self._ask(self.mode, self.share, False, now)
        return True

    def _ask(self, mode: Mode, share: float, rolled_back: bool, now: float) -> None:
        self._target = (mode, share, rolled_back)
        self.ready(now)

    def ready(self, now: float) -> None:
        """Hand over if a switch is pending and the pipelines it needs are ready (called after inputs)."""
        if self._target is None:
            return
        mode, share, rolled_back = self._target
        rest_all = mode.rest_driven or rolled_back
        rest_some = rest_all or (mode is Mode.CUTOVER and share < 1.0)
        stream_some = not rest_all
        if rest_some and self._rest.rounds == 0:
            return  # REST has not polled since it started: it would speak from old state
        if stream_some and not self._stream_current():
            return  # the stream's book is not known to be current (private link down, or no snapshot yet)
        self._target = None
        self.mode, self.share, self._rest_all = mode, share, rest_all
        self._handover(now)

    def _handover(self, now: float) -> None:
        keys = dict.fromkeys([*self.view, *self._stream_keys(), *self._rest.keys()])
        for key in keys:
            rest = self.rest_drives(key[1])
            held = self._rest.get(key) if rest else self._stream_get(key)
            before = self.view.get(key)
            if held is None:
                if before is not None:
                    del self.view[key]
                    self._deliver(
                        PositionClosed(
                            link=Link.PRIVATE, at=now, position=before, cause="snapshot", seq=before.seq
                        )
                    )
                continue
            if before is None:
                self.view[key] = held
                self._deliver(PositionOpened(link=Link.PRIVATE, at=now, position=held, cause="snapshot"))
            if rest:
                self._rest.replay(key, now)
            else:
                self._stream_replay(key, now)
