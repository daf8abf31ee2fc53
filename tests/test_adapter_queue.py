"""The adapters' bounded, conflating event queue: order kept, market data bounded, nothing else dropped."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bybit_hybrid._queue import TAIL, EventBuffer, conflation_key
from hypothesis import given
from hypothesis import strategies as st

from bybit_hybrid_core import (
    Event,
    Link,
    LinkUp,
    OrderbookUpdate,
    PositionUpdate,
    PublicTrade,
    PublicTrades,
    TickerData,
    TickerUpdate,
)

D = Decimal


def ticker(symbol: str, price: str, at: float = 0.0, snapshot: bool = False) -> TickerUpdate:
    return TickerUpdate(
        link=Link.LINEAR,
        at=at,
        category="linear",
        symbol=symbol,
        ticker=TickerData(symbol=symbol, mark_price=D(price)),
        snapshot=snapshot,
        ts=int(at * 1000),
    )


def position(symbol: str, mark: str, cause: str = "mark", size: str = "1") -> PositionUpdate:
    return PositionUpdate(
        link=Link.PRIVATE,
        at=0.0,
        category="linear",
        symbol=symbol,
        position_idx=0,
        side="Buy",
        size=D(size),
        avg_price=D("100"),
        mark_price=D(mark),
        mark_ts=1,
        mark_age=0.0,
        unrealised_pnl=D(mark) - 100,
        pnl_pct=None,
        liq_price=None,
        take_profit=None,
        stop_loss=None,
        trailing_stop=None,
        leverage=None,
        seq=1,
        updated_ms=1,
        cause=cause,
        stale=False,  # type: ignore[arg-type]
    )


def book(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], snapshot: bool = False, u: int = 1
) -> OrderbookUpdate:
    levels = lambda xs: tuple((D(p), D(s)) for p, s in xs)  # noqa: E731
    return OrderbookUpdate(
        link=Link.LINEAR,
        at=0.0,
        category="linear",
        symbol="BTCUSDT",
        depth=50,
        snapshot=snapshot,
        bids=levels(bids),
        asks=levels(asks),
        best_bid=None,
        best_ask=None,
        u=u,
        seq=u,
        ts=u,
    )


def up(at: float) -> LinkUp:
    return LinkUp(link=Link.PRIVATE, at=at)


def test_below_the_limit_everything_is_delivered_in_order() -> None:
    buf = EventBuffer(limit=100)
    events: list[Event] = [ticker("BTCUSDT", str(100 + i), at=i) for i in range(50)]
    buf.extend(events)
    assert buf.drain() == events
    assert not buf and buf.conflated == 0


def test_past_the_limit_market_data_conflates_per_symbol_and_moves_to_the_back() -> None:
    buf = EventBuffer(limit=3)
    buf.extend([ticker("BTCUSDT", "1"), ticker("ETHUSDT", "2"), up(0.5)])
    buf.put(ticker("BTCUSDT", "3"))  # full: replaces the pending BTCUSDT ticker
    buf.put(ticker("BTCUSDT", "4"))
    out = buf.drain()
    assert [(type(e).__name__, getattr(e, "symbol", None)) for e in out] == [
        ("TickerUpdate", "ETHUSDT"),
        ("LinkUp", None),
        ("TickerUpdate", "BTCUSDT"),
    ]
    assert out[-1].ticker.mark_price == D("4")  # type: ignore[attr-defined]
    assert buf.conflated == 2


def test_position_and_link_events_are_never_dropped() -> None:
    buf = EventBuffer(limit=2)
    important = [position("BTCUSDT", str(100 + i), cause="position") for i in range(500)]
    buf.extend(important)
    assert buf.drain() == important


def test_mark_updates_conflate_per_position_and_never_overtake_a_position_update() -> None:
    buf = EventBuffer(limit=1)
    buf.put(position("BTCUSDT", "101"))
    buf.put(position("BTCUSDT", "102", cause="position", size="2"))
    buf.put(position("BTCUSDT", "103"))
    out = buf.drain()
    assert [(e.cause, e.mark_price) for e in out] == [  # type: ignore[attr-defined]
        ("position", D("102")),
        ("mark", D("103")),
    ]


def test_orderbook_deltas_merge_without_losing_levels() -> None:
    buf = EventBuffer(limit=1)
    buf.put(book([("100", "1"), ("99", "2")], [("101", "1")], snapshot=True, u=1))
    buf.put(book([("99", "0"), ("98", "5")], [("102", "3")], u=2))
    buf.put(book([("100", "4")], [("101", "0")], u=3))
    (merged,) = buf.drain()
    assert merged.snapshot and merged.u == 3  # type: ignore[attr-defined]
    assert merged.bids == ((D("100"), D("4")), (D("98"), D("5")))  # type: ignore[attr-defined]
    assert merged.asks == ((D("102"), D("3")),)  # type: ignore[attr-defined]


def test_delta_after_delta_keeps_removals_and_a_new_snapshot_replaces() -> None:
    buf = EventBuffer(limit=1)
    buf.put(book([("100", "1")], [], u=5))
    buf.put(book([("100", "0")], [], u=6))
    (merged,) = buf.drain()
    assert merged.bids == ((D("100"), D("0")),) and not merged.snapshot  # type: ignore[attr-defined]
    buf.put(book([("100", "1")], [], u=7))
    fresh = book([("50", "1")], [("51", "1")], snapshot=True, u=1)
    buf.put(fresh)
    assert buf.drain() == [fresh]


def test_trades_concatenate_up_to_a_tail() -> None:
    def trades(start: int, n: int) -> PublicTrades:
        rows = tuple(
            PublicTrade(
                time=i,
                symbol="BTCUSDT",
                side="Buy",
                size=D(1),
                price=D(i),
                tick_direction="PlusTick",
                trade_id=str(i),
                block_trade=False,
            )
            for i in range(start, start + n)
        )
        return PublicTrades(
            link=Link.LINEAR, at=0.0, category="linear", topic="publicTrade.BTCUSDT", trades=rows
        )

    buf = EventBuffer(limit=1)
    for k in range(30):
        buf.put(trades(k * 100, 100))
    (merged,) = buf.drain()
    assert len(merged.trades) == TAIL  # type: ignore[attr-defined]
    assert merged.trades[-1].time == 2999  # type: ignore[attr-defined]


def test_non_market_events_have_no_key() -> None:
    assert conflation_key(up(0.0)) is None
    assert conflation_key(position("X", "1", cause="position")) is None
    assert conflation_key(position("X", "1", cause="snapshot")) is None


@given(
    st.lists(
        st.tuples(st.sampled_from(["tick", "mark", "pos", "up"]), st.sampled_from(["A", "B", "C"])),
        max_size=300,
    ),
    st.integers(min_value=1, max_value=20),
)
def test_bounded_and_lossless_for_what_matters(ops: list[tuple[str, str]], limit: int) -> None:
    """Pending market events never exceed limit + number of keys; every non-market event comes out, in order;
    the last value of every key comes out; a slow consumer cannot make it grow without bound."""
    buf = EventBuffer(limit=limit)
    sent: list[Event] = []
    for i, (kind, sym) in enumerate(ops):
        event: Event
        if kind == "tick":
            event = ticker(sym, str(i))
        elif kind == "mark":
            event = position(sym, str(i))
        elif kind == "pos":
            event = position(sym, str(i), cause="position")
        else:
            event = up(float(i))
        buf.put(event)
        sent.append(event)
        market = sum(1 for e in buf._items.values() if conflation_key(e) is not None)
        assert market <= limit + 6  # 3 symbols x (ticker, mark)
    out = buf.drain()
    keep = [e for e in sent if conflation_key(e) is None]
    assert [e for e in out if conflation_key(e) is None] == keep
    last: dict[object, Event] = {conflation_key(e): e for e in sent if conflation_key(e) is not None}
    for key, event in last.items():
        assert [e for e in out if conflation_key(e) == key][-1] == event
    assert [sent.index(e) for e in out] == sorted(sent.index(e) for e in out)  # order kept


class EagerBuffer:
    """The buffer's rule, keyed on every arrival (how EventBuffer worked before it keyed lazily): the
    reference its batches and lazy keys must match. Past `limit`, a market event replaces the pending one
    of its key (the two merged, oldest first) and moves to the back."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: dict[int, list[Event]] = {}
        self.keys: dict[object, int] = {}
        self.seq = 0

    def put(self, event: Event) -> None:
        key = conflation_key(event)
        if key is not None:
            older = self.keys.get(key)
            self.keys[key] = self.seq
            if older is not None and len(self.items) >= self.limit:
                self.items[self.seq] = [*self.items.pop(older), event]
                self.seq += 1
                return
        self.items[self.seq] = [event]
        self.seq += 1

    def drain(self) -> list[list[Event]]:
        out = list(self.items.values())
        self.items.clear()
        self.keys.clear()
        return out


@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["tick", "mark", "pos", "up"]), st.sampled_from(["A", "B", "C"])),
            st.just(("drain", "")),
        ),
        max_size=200,
    ),
    st.integers(min_value=1, max_value=12),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
)
def test_batches_and_lazy_keys_conflate_exactly_like_keying_every_arrival(
    ops: list[tuple[str, str]], limit: int, sizes: list[int]
) -> None:
    buf, eager = EventBuffer(limit=limit), EagerBuffer(limit)
    batch: list[Event] = []
    turn = 0

    def flush() -> None:
        nonlocal turn
        buf.extend(batch)
        for event in batch:
            eager.put(event)
        batch.clear()
        turn += 1

    for i, (kind, sym) in enumerate(ops):
        if kind == "drain":
            flush()
            got, want = buf.drain(), eager.drain()
            # a merged group comes out as the newest of its events, folded: compare what identifies it
            assert [(type(e), conflation_key(e), e.at) for e in got] == [
                (type(g[-1]), conflation_key(g[-1]), g[-1].at) for g in want
            ]
            continue
        event: Event
        if kind == "tick":
            event = ticker(sym, str(i + 1), at=float(i))
        elif kind == "mark":
            event = position(sym, str(i + 1))
        elif kind == "pos":
            event = position(sym, str(i + 1), cause="position")
        else:
            event = up(float(i))
        batch.append(event)
        if len(batch) >= sizes[turn % len(sizes)]:
            flush()
    flush()
    assert len(buf.drain()) == len(eager.drain())


# ------------------------------------------------------------------------- the loop's inbox (async adapters)


def test_the_inbox_hands_over_everything_at_once_and_waits_only_to_sleep() -> None:
    import asyncio

    from bybit_hybrid._inbox import Inbox

    async def main() -> None:
        inbox: Inbox[int] = Inbox(2, asyncio.Event)
        inbox.post_nowait(1)
        await inbox.wait()  # something pending: returns at once
        assert inbox.take() == [1] and inbox.take() == [] and not inbox

        async def later() -> None:
            await asyncio.sleep(0)
            for i in range(4):  # past the limit: the last two wait until the loop takes
                await inbox.post(i)

        poster = asyncio.create_task(later())
        await inbox.wait()
        await asyncio.sleep(0)
        assert inbox.take() == [0, 1]  # the posts past the limit waited
        await asyncio.sleep(0)
        assert inbox.take() == [2, 3]
        await poster
        inbox.post_nowait(9)
        inbox.close()
        inbox.post_nowait(10)  # closed: dropped
        await inbox.wait()  # closed: never sleeps
        assert inbox.take() == [9]
        await inbox.post(11)  # nor does posting
        assert inbox.take() == []

    asyncio.run(main())


def test_the_inbox_sleeps_until_a_post_or_its_deadline_and_leaves_no_timer_behind() -> None:
    import asyncio

    from bybit_hybrid._inbox import Inbox

    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox: Inbox[int] = Inbox(8, asyncio.Event)
        armed: list[asyncio.TimerHandle] = []

        def call_at(when: float, callback: Any, arg: Any) -> asyncio.TimerHandle:
            handle = loop.call_at(when, callback, arg)
            armed.append(handle)
            return handle

        # a post wakes it long before its deadline; the deadline's timer is cancelled on the way out
        loop.call_soon(inbox.post_nowait, 1)
        await inbox.wait_until(loop.time() + 3600.0, call_at)
        assert inbox.take() == [1] and armed[-1].cancelled()
        # nothing posted: the deadline wakes it (a deadline already past: on the loop's next turn)
        await inbox.wait_until(loop.time() - 1.0, call_at)
        assert inbox.take() == [] and len(armed) == 2
        # no deadline: no timer; something pending or a closed inbox: returns without arming one
        loop.call_soon(inbox.post_nowait, 2)
        await inbox.wait_until(None, call_at)
        inbox.post_nowait(3)
        await inbox.wait_until(loop.time() + 3600.0, call_at)
        assert inbox.take() == [2, 3] and len(armed) == 2
        # a deadline that fired leaves the next sleep to its own post
        loop.call_soon(inbox.post_nowait, 4)
        await inbox.wait_until(loop.time() + 3600.0, call_at)
        assert inbox.take() == [4]
        inbox.close()
        await inbox.wait_until(loop.time() + 3600.0, call_at)
        assert len(armed) == 3 and armed[2].cancelled()  # the post-4 sleep armed one; closed: none

    asyncio.run(main())


def test_closing_the_inbox_wakes_the_loop_and_a_waiting_poster() -> None:
    import asyncio

    from bybit_hybrid._inbox import Inbox

    async def main() -> None:
        inbox: Inbox[int] = Inbox(1, asyncio.Event)
        sleeper = asyncio.create_task(inbox.wait())
        await asyncio.sleep(0)
        inbox.post_nowait(1)
        poster = asyncio.create_task(inbox.post(2))  # full: waits
        await asyncio.sleep(0)
        assert not poster.done()
        inbox.close()
        await asyncio.wait_for(asyncio.gather(sleeper, poster), 5)
        assert inbox.take() == [1]

    asyncio.run(main())


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.lists(
                st.tuples(st.sampled_from(["98", "99", "100"]), st.sampled_from(["0", "1", "2"])), max_size=3
            ),
            st.lists(st.tuples(st.sampled_from(["101", "102"]), st.sampled_from(["0", "3"])), max_size=2),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_conflated_books_merged_when_drained_equal_merging_on_arrival(
    updates: list[tuple[bool, list[tuple[str, str]], list[tuple[str, str]]]],
) -> None:
    """The buffer merges a key's pending events once, when drained (or every GROUP events); that must give
    what merging each arrival into the previous would have (`_merge`, the definition)."""
    import functools

    from bybit_hybrid._queue import GROUP, _merge

    books = [
        book(list(dict(b).items()), list(dict(a).items()), snapshot=snap, u=i)
        for i, (snap, b, a) in enumerate(updates)
    ]
    buf = EventBuffer(limit=1)
    for event in books:
        buf.put(event)
        assert all(len(getattr(item, "events", ())) < GROUP for item in buf._items.values())  # bounded
    (merged,) = buf.drain()
    assert merged == functools.reduce(_merge, books)
