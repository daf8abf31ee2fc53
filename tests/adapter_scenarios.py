"""What every adapter must do over real TCP + TLS on 127.0.0.1 against the served FakeExchange.

Each `test_adapter_*.py` module star-imports these tests and provides a `make_driver` fixture: a function
`make_driver(consume=True, **options) -> Driver` that starts that module's `HybridStream` (with `options`
passed through) and collects its events on a background thread, so the scenarios read the same for the
anyio (asyncio, trio), asyncio and threaded adapters. Timings are set short so the failure paths take
about a second each.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Protocol

import pytest
from bybit_hybrid._queue import conflation_key
from bybit_hybrid.server import ServedExchange

from adapter_helpers import no_leaks
from bybit_hybrid_core import (
    Authenticated,
    AuthFailed,
    Config,
    Credentials,
    Event,
    FallbackStarted,
    HybridCore,
    Link,
    LinkDown,
    LinkUp,
    OrderbookUpdate,
    OrderUpdate,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    Rollout,
    SnapshotFailed,
    Subscribed,
    TickerUpdate,
    Timings,
)

FAST = Timings(
    ping_interval=0.5, pong_timeout=0.5, handshake_timeout=2.0, ack_timeout=2.0, backoff_base=0.05,
    backoff_cap=0.3, auth_backoff_base=0.5, auth_backoff_cap=1.0,
)  # fmt: skip
Events = list[Event]


class Driver(Protocol):
    stream: Any

    def events(self) -> Events: ...
    def wait_for(self, predicate: Callable[[Events], bool], timeout: float = 5.0) -> Events: ...
    def call(self, fn: Callable[[HybridCore], Any]) -> Any: ...
    def command(self, name: str, *args: Any) -> Any: ...
    def resume(self) -> None: ...
    def close(self) -> None: ...


MakeDriver = Callable[..., Driver]


class Collector:
    """Thread-safe event list with waiting, shared by the drivers."""

    def __init__(self) -> None:
        self._events: Events = []
        self._cond = threading.Condition()

    def add(self, batch: Events) -> None:
        with self._cond:
            self._events.extend(batch)
            self._cond.notify_all()

    def events(self) -> Events:
        with self._cond:
            return list(self._events)

    def wait_for(self, predicate: Callable[[Events], bool], timeout: float = 5.0) -> Events:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._events), timeout):
                kinds = [type(e).__name__ for e in self._events[-30:]]
                raise AssertionError(f"condition not met within {timeout} s; last events: {kinds}")
            return list(self._events)


def count(events: Events, kind: type[Event], **fields: Any) -> int:
    return sum(
        1 for e in events if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
    )


def both_up(events: Events) -> bool:
    return count(events, LinkUp, link=Link.PRIVATE) >= 1 and count(events, LinkUp, link=Link.LINEAR) >= 1


def position_updates(events: Events, cause: str) -> list[PositionUpdate]:
    return [e for e in events if isinstance(e, PositionUpdate) and e.cause == cause]


def marks(events: Events, symbol: str) -> set[Decimal]:
    return {e.mark_price for e in position_updates(events, "mark") if e.symbol == symbol and e.mark_price}


@pytest.fixture
def served() -> Iterator[ServedExchange]:
    with ServedExchange(tls=True) as server:
        yield server


def options(served: ServedExchange, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "api_key": served.api_key, "api_secret": served.api_secret, "endpoints": served.endpoints,
        "cafile": served.ca_file, "timings": FAST, "categories": ("linear",),
    }  # fmt: skip
    return base | extra


def rollout_options(served: ServedExchange, **rollout: Any) -> dict[str, Any]:
    """A ready `Config` (the way to set `rollout`): marks go stale after 0.3 s, REST polls every 0.3 s."""
    config = Config(
        credentials=Credentials(served.api_key, served.api_secret), endpoints=served.endpoints,
        categories=("linear",), timings=dataclasses.replace(FAST, stale_mark_after=0.3),
        rollout=Rollout(**({"marks_fallback_after": 0.3, "poll_interval": 0.3} | rollout)),
    )  # fmt: skip
    return {"config": config, "cafile": served.ca_file}


def live(driver: Driver) -> Events:
    """Both links up, private topics confirmed, the REST snapshot reconciled."""
    return driver.wait_for(
        lambda ev: both_up(ev) and count(ev, Subscribed, link=Link.PRIVATE) >= 1
        and count(ev, PositionsSynced, category="linear") >= 1
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ tests


def test_live_positions_then_server_killed_and_back(make_driver: MakeDriver, served: ServedExchange) -> None:
    """Connect, auth, subscribe, merged updates with moving marks; the server killed -> reconnect,
    re-auth, resubscribe, REST resync, no position lost; then a clean shutdown with no leaks."""
    served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
    with no_leaks():
        driver = make_driver(**options(served))
        try:
            events = live(driver)
            assert count(events, Authenticated) == 1
            assert count(events, PositionOpened) == 1
            driver.wait_for(lambda ev: len(marks(ev, "BTCUSDT")) >= 2)  # the mark moves between pushes
            served.call(lambda ex: ex.open_position("ETHUSDT", "Sell", "2"))
            driver.wait_for(lambda ev: len(marks(ev, "ETHUSDT")) >= 1)
            assert "tickers.ETHUSDT" in served.call(lambda ex: ex.subscriptions("linear"))

            rest_before, seen = served.rest_requests, len(driver.events())
            served.kill()
            driver.wait_for(lambda ev: count(ev[seen:], LinkDown) >= 2)
            served.call(lambda ex: ex.open_position("SOLUSDT", "Buy", "10"))  # while nobody listens
            # Refused redials are reported at once (not left to the handshake timeout), and back off.
            events = driver.wait_for(lambda ev: count(ev[seen:], LinkDown) >= 4, timeout=1.5)
            assert count(events[seen:], LinkDown) < 40
            served.revive()
            driver.wait_for(
                lambda ev: both_up(ev[seen:]) and count(ev[seen:], Authenticated) >= 1
                and count(ev[seen:], PositionsSynced, category="linear") >= 1
                and bool(marks(ev[seen:], "SOLUSDT"))
            )  # fmt: skip
            assert served.rest_requests > rest_before
            held = driver.call(lambda core: {key[1] for key in core.positions()})
            assert held == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
            driver.wait_for(lambda ev: held <= {e.symbol for e in position_updates(ev[seen:], "mark")})
            subscribed = served.call(lambda ex: ex.subscriptions("linear") | ex.subscriptions("private"))
            assert {"tickers.BTCUSDT", "tickers.ETHUSDT", "tickers.SOLUSDT", "position"} <= subscribed
        finally:
            driver.close()


def test_every_rest_call_is_carried_on_kept_alive_connections(
    make_driver: MakeDriver, served: ServedExchange
) -> None:
    """FetchTime at start, FetchPositions for the snapshot (held back 0.3 s by the exchange, so its requests
    are in flight at once) and FetchTickers for a position whose ticker is refused (the marks fallback):
    each answer reaches the core, and the pooled client reuses the exchange's kept-alive connections."""
    served.call(lambda ex: ex.fail_subscribe("tickers.ETHUSDT"))  # refused until healed: the mark goes dark
    served.call(lambda ex: ex.open_position("ETHUSDT", "Buy", "1"))
    served.call(lambda ex: ex.rest_delay(0.3, path="/v5/position/list"))
    with no_leaks():
        driver = make_driver(**rollout_options(served))
        try:
            events = driver.wait_for(
                lambda ev: count(ev, PositionsSynced, category="linear") >= 1
                and count(ev, FallbackStarted, what="marks") >= 1
                and any(e.source == "rest" for e in position_updates(ev, "mark"))
            )  # fmt: skip
            polled = [e for e in position_updates(events, "mark") if e.source == "rest"]
            assert {e.symbol for e in polled} == {"ETHUSDT"} and all(e.mark_price for e in polled)
            # the tickers answers reached the core: it priced the position with them (no ticker came)
            driver.wait_for(lambda ev: served.rest_log.count(("GET", "/v5/market/tickers")) >= 3)
            assert ("GET", "/v5/market/time") in served.rest_log
            assert served.rest_peak >= 2  # the snapshot's requests were in flight together
            rest_connections = served.tcp_connections - served.accepted
            assert 1 <= rest_connections < served.rest_requests  # connections reused between requests
        finally:
            driver.close()


def test_an_explicit_proxy_carries_rest_and_its_password_is_never_shown(
    make_driver: MakeDriver, served: ServedExchange, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as gone:  # a port nobody listens on: REST through this "proxy" fails
        gone.bind(("127.0.0.1", 0))
        port = gone.getsockname()[1]
    password = "pr0xy-pa55word"
    with no_leaks(), caplog.at_level(logging.DEBUG):
        driver = make_driver(**options(served, proxy=f"http://user:{password}@127.0.0.1:{port}"))
        try:
            events = driver.wait_for(lambda ev: both_up(ev) and count(ev, SnapshotFailed) >= 1)
            assert served.rest_requests == 0  # the snapshot went to the proxy, not to the exchange
            assert f"http://***@127.0.0.1:{port}" in repr(driver.stream.settings)
            texts = [repr(driver.stream.settings), caplog.text, *(repr(e) for e in events)]
            assert not [t for t in texts if password in t]
        finally:
            driver.close()


def test_half_open_link_is_replaced(make_driver: MakeDriver, served: ServedExchange) -> None:
    """A link gone silent both ways is found by the pong deadline and redialed (ping 0.5 s + pong 0.5 s)."""
    with no_leaks():
        driver = make_driver(**options(served))
        try:
            live(driver)
            seen = len(driver.events())
            frozen_at = time.monotonic()
            assert served.freeze() == 2
            events = driver.wait_for(lambda ev: both_up(ev[seen:]))
            assert time.monotonic() - frozen_at < 4.0  # ping + pong deadline + backoff, well under 30 s
            downs = [e for e in events[seen:] if isinstance(e, LinkDown)]
            assert {e.link for e in downs} == {Link.PRIVATE, Link.LINEAR}
            assert all("pong" in e.reason.lower() for e in downs), [e.reason for e in downs]
            assert served.call(lambda ex: len(ex.connections())) == 2  # the replacements
        finally:
            driver.close()


def test_refused_auth_backs_off_without_a_tight_loop(make_driver: MakeDriver, served: ServedExchange) -> None:
    with no_leaks():
        driver = make_driver(**options(served, api_secret="wrong-secret"))
        try:
            started = time.monotonic()
            events = driver.wait_for(lambda ev: count(ev, AuthFailed) >= 2, timeout=6.0)
            failed = [e for e in events if isinstance(e, AuthFailed)]
            # backs off: equal jitter keeps every wait at least half the step (auth_backoff_base 0.5 s)
            assert all(e.retry_in >= 0.25 for e in failed), failed
            time.sleep(1.0)
            elapsed = time.monotonic() - started
            dials, performed = driver.call(
                lambda core: (core.status()[Link.PRIVATE].dials, driver.stream.links[Link.PRIVATE].dials)
            )
            assert dials == performed
            assert dials <= 2 + elapsed / 0.25, f"{dials} private dials in {elapsed:.1f} s"
            assert count(driver.events(), LinkUp, link=Link.LINEAR) == 1  # the public link is unaffected
        finally:
            driver.close()


def test_slow_consumer_memory_is_bounded(make_driver: MakeDriver, served: ServedExchange) -> None:
    """Market data conflates once `max_pending` events wait; position, order and link events are all kept."""
    topics = ("orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT", "publicTrade.BTCUSDT", "tickers.SOLUSDT")
    with no_leaks():
        driver = make_driver(consume=False, **options(served, topics=topics, max_pending=30))
        try:
            time.sleep(1.0)
            for i in range(5):
                served.call(lambda ex, i=i: ex.place_order("BTCUSDT", "Buy", str(i + 1)))
            time.sleep(1.0)
            stream = driver.stream
            buffer = stream._mailbox.buffer  # each adapter's Mailbox or AsyncMailbox
            assert buffer.conflated > 20
            driver.resume()
            driver.wait_for(lambda ev: len(position_updates(ev, "position")) >= 5)
            events = driver.wait_for(
                lambda ev: count(ev, OrderbookUpdate) >= 2 and count(ev, TickerUpdate) >= 1
            )
            sizes = [e.size for e in position_updates(events, "position")]
            assert sizes[:5] == [Decimal(n) for n in (1, 3, 6, 10, 15)], sizes  # every fill, in order
            assert count(events, OrderUpdate) >= 5 and count(events, Authenticated) == 1
            never_dropped = sum(1 for e in events if conflation_key(e) is None)
            assert buffer.high_water <= 30 + 10 + never_dropped  # the limit + one per key + what must be kept
        finally:
            driver.close()


def test_plain_ws_and_secrets_never_shown(make_driver: MakeDriver, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-value-never-logged"
    with ServedExchange(tls=False, api_secret=secret) as plain, no_leaks(), caplog.at_level(logging.DEBUG):
        driver = make_driver(**options(plain, api_secret=secret, cafile=None))
        try:
            live(driver)
            plain.kill()  # some failure paths log too
            plain.revive()
            driver.wait_for(lambda ev: count(ev, Authenticated) >= 2)
            assert plain.ws_url.startswith("ws://")
            texts = [repr(driver.stream), str(driver.stream), repr(driver.stream.settings), caplog.text]
            texts += [repr(e) for e in driver.events()]
            assert not [t for t in texts if secret in t]
        finally:
            driver.close()


# ----------------------------------------------------------------------------------------------- drivers


class PortalDriver(Collector):
    """Runs an async `HybridStream` (anyio's or asyncio's) on an event loop in a thread (an anyio portal)
    and checks, at close, that no task outlives it."""

    def __init__(self, cls: type, backend: str, consume: bool = True, **options: Any) -> None:
        from anyio.from_thread import start_blocking_portal

        super().__init__()
        self._portal_cm = start_blocking_portal(backend)
        self.portal = self._portal_cm.__enter__()
        self._tasks_before = self.portal.call(_task_count)
        self.stream = cls(**options)
        self._cm = self.portal.wrap_async_context_manager(self.stream)
        self._cm.__enter__()
        self._consuming = threading.Event()
        if consume:
            self._consuming.set()
        self._pump = self.portal.start_task_soon(self._consume)

    async def _consume(self) -> None:
        import anyio

        while not self._consuming.is_set():
            await anyio.sleep(0.02)
        while batch := await self.stream.next_batch():
            self.add(batch)

    def call(self, fn: Callable[[HybridCore], Any]) -> Any:
        return self.portal.call(lambda: fn(self.stream.core))

    def command(self, name: str, *args: Any) -> Any:
        return self.portal.call(lambda: getattr(self.stream, name)(*args))

    def resume(self) -> None:
        self._consuming.set()

    def close(self) -> None:
        try:
            self._cm.__exit__(None, None, None)
            self._consuming.set()
            self._pump.result(5)  # the iterator ends once the stream is closed
            assert self.portal.call(_task_count) == self._tasks_before, "tasks outlived the stream"
        finally:
            self._portal_cm.__exit__(None, None, None)


async def _task_count() -> int:
    import anyio

    return len(anyio.get_running_tasks())
