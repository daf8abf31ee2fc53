"""REST snapshot rounds: which pages are asked for, retries with backoff, and when a category is complete.

A round starts when the private link comes up (ARCHITECTURE.md "The hybrid join"). Per tracked category it
lists every settle coin the endpoint needs (`_rest.categories_requests`) and follows `nextPageCursor` until
the last page. A failed page is reported (`SnapshotFailed`) and asked again after `base * 2**n` seconds,
capped, with "equal jitter": a uniform draw between half that and all of it, so that many clients failed by
one outage do not all retry at the same instant, yet none retries sooner than half the step. The draws come
from a `Random` the caller seeds (the data plane: from `Config.seed`), so the same seed gives the same
events. A request the adapter never answers counts as failed after twice its timeout. When every listing
of a category is complete the round hands its rows and its *epoch* (the position book's generation when
the round began) to the join, which reconciles them with what the stream said meanwhile.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any, Literal

from .._config import Config, Link
from .._events import Action, Event, Position, ProtocolProblem, RestRequest, SnapshotFailed
from .._timers import Deadlines
from .account import OwnMark
from .rest import SnapshotError, build_request, categories_requests, parse_page

__all__ = ["CompletedSnapshot", "SnapshotSync"]

_MAX_PAGES = 1000  # 200 rows each: far beyond any account; a cursor that never ends is a server bug


@dataclass(slots=True)
class _Listing:
    """One (category, settleCoin) listing being paged through."""

    number: int
    category: str
    settle_coin: str
    cursor: str = ""
    pages: int = 0
    failures: int = 0
    pending: int | None = None  # id of the request in flight
    done: bool = False
    rows: list[tuple[Position, OwnMark | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CompletedSnapshot:
    """Every page of one category: the rows (open or flat) and the book generation when the round began."""

    category: str
    epoch: int
    rows: tuple[tuple[Position, OwnMark | None], ...]


class SnapshotSync:
    """Issues signed `FetchPositions` actions and collects their answers per category."""

    __slots__ = (
        "_act",
        "_config",
        "_emit",
        "_epoch",
        "_ids",
        "_listings",
        "_purpose",
        "_requests",
        "_rng",
        "_timers",
    )

    def __init__(
        self,
        config: Config,
        emit: Callable[[Event], None],
        act: Callable[[Action], None],
        rng: Random,
        *,
        purpose: Literal["snapshot", "poll"] = "snapshot",
        ids: Callable[[], int] | None = None,
    ) -> None:
        self._config = config
        self._rng = rng  # retry jitter only
        self._emit = emit
        self._act = act
        self._purpose: Literal["snapshot", "poll"] = (
            purpose  # on every request: the core routes answers by it
        )
        self._ids = ids if ids is not None else itertools.count(1).__next__
        self._epoch = 0
        self._listings: dict[int, _Listing] = {}
        self._requests: dict[int, _Listing] = {}
        self._timers: Deadlines[tuple[str, int]] = Deadlines()  # ("retry", listing) / ("expire", request id)

    @property
    def active(self) -> bool:
        return bool(self._listings)

    def start(self, now: float, wall_ms: int, epoch: int) -> None:
        """Begin a new round (dropping any round in flight: its answers will be ignored)."""
        self.cancel()
        if self._config.credentials is None:
            return
        self._epoch = epoch
        for category in dict.fromkeys(self._config.position_categories):
            for coin in categories_requests(category, self._config.settle_coins):
                number = len(self._listings)
                self._listings[number] = _Listing(number, category, coin)
        for listing in self._listings.values():
            self._request(listing, now, wall_ms)

    def cancel(self) -> None:
        self._listings.clear()
        self._requests.clear()
        self._timers.clear()

    def answer(
        self, request: RestRequest, status: int, body: bytes, now: float, wall_ms: int
    ) -> CompletedSnapshot | None:
        """Take one answer; returns the category's rows when this answer completed it."""
        listing = self._requests.pop(request.id, None)
        if listing is None:
            return None  # an answer to a round that was superseded (private reconnect) or timed out
        listing.pending = None
        self._timers.cancel(("expire", request.id))
        try:
            page = parse_page(request, status, body, now)
        except SnapshotError as exc:
            self._failed(listing, str(exc), now)
            return None
        if page.next_cursor and (page.next_cursor == listing.cursor or listing.pages + 1 >= _MAX_PAGES):
            # a cursor loop: start this listing over rather than trust half of it
            listing.cursor, listing.pages = "", 0
            listing.rows.clear()
            reason = f"nextPageCursor {page.next_cursor[:40]!r} does not advance"
            self._emit(ProtocolProblem(link=Link.PRIVATE, at=now, detail=f"position snapshot: {reason}"))
            self._failed(listing, reason, now)
            return None
        listing.failures = 0
        listing.pages += 1
        listing.rows.extend(page.rows)
        if page.next_cursor:
            listing.cursor = page.next_cursor
            self._request(listing, now, wall_ms)
            return None
        listing.done = True
        return self._complete(listing.category)

    def tick(self, now: float, wall_ms: int) -> None:
        for kind, number in self._timers.due(now):
            # answers cancel their "expire", `cancel` clears every timer, and a listing with a retry due is
            # not done, so its category cannot have completed: each key still names what it did
            if kind == "expire":
                listing = self._requests.pop(number)
                listing.pending = None
                self._failed(listing, "no answer to the request in time", now)
            else:
                self._request(self._listings[number], now, wall_ms)

    def deadline(self) -> float | None:
        return self._timers.earliest()

    def queues(self) -> tuple[Deadlines[Any], ...]:
        """The timer queues behind `deadline()` (the data plane takes their earliest in one pass)."""
        return (self._timers,)

    # ---------------------------------------------------------------------------------------- internal

    def _request(self, listing: _Listing, now: float, wall_ms: int) -> None:
        assert self._config.credentials is not None  # rounds only start with credentials
        request_id = self._ids()
        action = build_request(
            request_id=request_id,
            rest_base=self._config.urls.rest_base,
            credentials=self._config.credentials,
            wall_ms=wall_ms,
            recv_window_ms=self._config.timings.rest_recv_window_ms,
            category=listing.category,
            settle_coin=listing.settle_coin,
            cursor=listing.cursor,
            purpose=self._purpose,
        )
        listing.pending = request_id
        self._requests[request_id] = listing
        self._timers.set(("expire", request_id), now + 2 * action.timeout)
        self._act(action)

    def _failed(self, listing: _Listing, reason: str, now: float) -> None:
        timings = self._config.timings
        step = min(
            timings.snapshot_backoff_cap, timings.snapshot_backoff_base * 2 ** min(listing.failures, 30)
        )
        delay = step * (0.5 + 0.5 * self._rng.random())
        listing.failures += 1
        self._timers.set(("retry", listing.number), now + delay)
        self._emit(
            SnapshotFailed(
                link=Link.PRIVATE, at=now, category=listing.category, reason=reason, retry_in=delay
            )
        )

    def _complete(self, category: str) -> CompletedSnapshot | None:
        mine = [listing for listing in self._listings.values() if listing.category == category]
        if not all(listing.done for listing in mine):
            return None
        for listing in mine:
            del self._listings[listing.number]
        rows = tuple(row for listing in mine for row in listing.rows)
        return CompletedSnapshot(category=category, epoch=self._epoch, rows=rows)
