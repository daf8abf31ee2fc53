"""The stdlib-asyncio adapter: the same `HybridStream` API as the anyio one, its links on asyncio alone.

    from bybit_hybrid.asyncio import HybridStream
    async with HybridStream(api_key=..., api_secret=..., testnet=True) as stream:
        async for event in stream:
            ...

A task per connection dials (`loop.create_connection`: TLS with SNI and verification for wss://); from then
on the connection's `_Protocol` posts what the transport reads straight to the loop's inbox, with no task
in between (asyncio's TLS layer already hands up everything one socket read decrypted, in one chunk). The
loop feeds everything posted since it last ran with `loop.time()` to the core, polls once, performs the
actions and sleeps until the next input or `Output.deadline` (`asyncio.timeout_at`, the same clock). Writes
are buffered by the transport, so the loop never blocks on a slow peer; a peer that stops reading is found
by the core's pong deadline.

Every `RestCall` runs in a task of its own on one pooled httpx client (`rest.AsyncRest`) held for the
stream's life. It is made at the first REST call, not before: httpx's async transport runs on anyio, so
that is when anyio is loaded (importing this module, and a stream that makes no REST call, load none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bybit_hybrid_core import Action, Dial, Event, Hangup, HybridCore, Link, RestCall, RestRequest, Send

from ._commands import Commands
from ._inbox import Inbox
from ._links import Links
from ._net import LinkStats, describe, target
from ._queue import AsyncMailbox
from ._startup import LiveWatch
from ._wallclock import WallClock
from .config import settings
from .rest import AsyncRest

__all__ = ["HybridStream"]

log = logging.getLogger("bybit_hybrid")
Item = tuple[str, Any, Any, Any]  # (kind, link, connection or request, payload)


class _Conn:
    __slots__ = ("task", "transport")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None  # dialing
        self.transport: asyncio.Transport | None = None  # connected

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()  # no TLS goodbye: the core already sent its close frame


class _Protocol(asyncio.Protocol):
    """One connection's transport callbacks, each posted to the loop's inbox as it happens (nothing waits)."""

    def __init__(self, post: Callable[[Item], None], link: Link, conn: _Conn) -> None:
        self._post, self._link, self._conn = post, link, conn
        self._ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._conn.transport = transport  # before any data_received, hence here and not after the dial
        self._post(("up", self._link, self._conn, None))

    def data_received(self, data: bytes) -> None:
        # A callback cannot wait for room; none is needed: the transport calls this once per socket read
        # (up to 256 KiB), and the loop task takes all that is pending each time the event loop runs it.
        self._post(("data", self._link, self._conn, data))

    def eof_received(self) -> bool:
        self._end(("data", self._link, self._conn, b""))  # the core hangs up and redials
        return False  # and the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        # After an end of stream, or our own abort (the connection is then no longer current), this is no
        # news; else it is a reset or a TLS error (`exc`), or a close that came without an EOF first.
        self._end(("data", self._link, self._conn, b"") if exc is None else
                  ("lost", self._link, self._conn, describe(exc)))  # fmt: skip

    def _end(self, item: Item) -> None:
        if not self._ended:
            self._ended = True
            self._post(item)


class HybridStream(Commands):
    """A Bybit V5 hybrid stream on stdlib asyncio. Arguments: see `bybit_hybrid.config`.

    Commands (`track`, `untrack`, `subscribe`, `unsubscribe`) and `core` reads must run on the stream's
    event loop; they act at once and wake the loop.
    """

    def __init__(self, api_key: str | None = None, api_secret: str | None = None, **options: Any) -> None:
        self.settings = settings(api_key, api_secret, **options)
        self.core = HybridCore(self.settings.config)
        self._links: Links[_Conn] = Links(self.core)
        self.links: dict[Link, LinkStats] = self._links.stats
        self._mailbox = AsyncMailbox(self.settings.max_pending, asyncio.Event)
        self._live = LiveWatch(self.settings.config, self.core.status)
        self._tasks: set[asyncio.Task[None]] = set()
        self._inbox: Inbox[Item] = Inbox(256, asyncio.Event)
        self._run_task: asyncio.Task[None] | None = None
        self._rest: AsyncRest | None = None  # at the first RestCall, on the running loop (it loads anyio)

    def __repr__(self) -> str:
        state = "closed" if self._mailbox.closed else "running" if self._run_task else "new"
        return f"<HybridStream asyncio {state} links={sorted(self._links)} pending={len(self._mailbox)}>"

    # ----------------------------------------------------------------------------- the application side

    async def __aenter__(self) -> HybridStream:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._wall = WallClock(started)
        self.core.start(started, self._wall.wall_ms())  # commands work from here on
        self._run_task = asyncio.create_task(self._run(), name="bybit-hybrid-loop")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
            for _ in range(3):  # aborted transports close their sockets on the next loop iterations
                await asyncio.sleep(0)

    def __aiter__(self) -> HybridStream:
        return self

    def __anext__(self) -> Awaitable[Event]:
        return self._mailbox.next_event()  # its coroutine itself: no second frame per event

    async def next_batch(self) -> list[Event]:
        """Every pending event, oldest first; waits for at least one. [] once the stream is closed;
        raises what stopped the loop if it failed."""
        return await self._mailbox.next_batch()

    async def wait_live(self, timeout: float) -> None:
        """Return once the stream is live: every link the core runs is LIVE and, with credentials, every
        position category was synced over REST. Enter the stream first.

        Raises:
            StartupFailed: within `timeout` seconds: at once on a sign that waiting will not help (DNS,
                connection refused, TLS, HTTP 403 geo-block, refused auth; its message and hint say which),
                else when `timeout` passes (`kind == "timed_out"`, with each link's state). The stream keeps
                trying either way; see `bybit_hybrid._startup`.
        """
        if self._run_task is None:
            raise RuntimeError("enter the stream (async with) before wait_live()")
        live = self._live
        since = live.begin()
        try:
            async with asyncio.timeout(timeout):
                while (outcome := live.outcome(since)) is None:
                    changed = asyncio.Event()
                    live.notify(changed.set)  # no await between outcome() and here: no change is missed
                    await changed.wait()
        except TimeoutError:
            raise live.watch.timed_out(timeout, self.core.status()) from None
        if outcome is not True:
            raise outcome

    @property
    def started(self) -> bool:
        """True once entered (a stream runs once)."""
        return self._run_task is not None

    @property
    def pending(self) -> int:
        """Events waiting for the application (bounded for market data; see `_queue`)."""
        return len(self._mailbox)

    def _command(self, fn: Callable[[HybridCore], object]) -> None:
        fn(self.core)  # misuse raises here, at the caller
        if not self._inbox:  # else the loop polls soon anyway
            self._inbox.post_nowait(("poll", None, None, None))

    # ------------------------------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        failure = None
        try:
            await self._loop()
        except Exception as exc:  # a bug, not the network: surface it to the application
            log.exception("bybit_hybrid loop failed")
            failure = exc
        finally:
            # Cancel until every task is done: a cancellation racing a finished await can be swallowed.
            pending = set(self._tasks)
            while pending:
                for task in pending:
                    task.cancel()
                _, pending = await asyncio.wait(pending, timeout=1.0)
            self._links.close_all()  # abort every transport (their sockets close on the next iterations)
            self._inbox.close()
            self._mailbox.close(failure)
            self._live.close(failure)
            if self._rest is not None:  # no task uses it any more
                await self._rest.aclose()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        clock, call_at, core, inbox, feed = loop.time, loop.call_at, self.core, self._inbox, self._links.feed
        now = clock()
        while True:
            wall = self._wall.stepped(now)
            if wall is not None:  # a suspend or an NTP step: auth and REST times must follow
                core.clock(now, wall)
            out = core.poll()
            for action in out.actions:
                self._perform(action)
            if out.events:
                self._mailbox.put(out.events)
                self._live.observe(out.events)  # lifecycle log lines, wait_live
            if not inbox:  # asleep until a post or the core's deadline (a timer handle, not a timeout)
                await inbox.wait_until(out.deadline, call_at)
            now = clock()
            items = inbox.take()  # every read since the last poll: one poll, one hand-off for them all
            if not items:
                core.tick(max(now, out.deadline or 0.0))  # an early wake-up is still due
            for item in items:
                feed(*item, now)

    def _perform(self, action: Action) -> None:
        match action:
            case Dial(link=link, url=url):
                new = self._links.dial(link, _Conn())
                new.task = self._spawn(self._connection(link, new, url))
            case Send(link=link, data=data):
                conn = self._links.get(link)
                if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                    conn.transport.write(data)
            case Hangup(link=link):
                self._links.close(link)
            case RestCall(request=request, timeout=timeout):  # every REST action, each in its own task
                if self._rest is None:
                    self._rest = AsyncRest(self.settings.ssl_context, proxy=self.settings.proxy)
                self._spawn(self._fetch(self._rest, request, timeout))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _connection(self, link: Link, conn: _Conn, url: str) -> None:
        """Dial; from then on the connection's `_Protocol` reports (and `_Conn.close` aborts it)."""
        loop = asyncio.get_running_loop()
        try:
            where = target(url)
            tls = self.settings.ssl_context if where.tls else None
            # asyncio.timeout, not wait_for: 3.11's wait_for can eat a cancel
            async with asyncio.timeout(self.settings.connect_timeout):
                await loop.create_connection(
                    lambda: _Protocol(self._inbox.post_nowait, link, conn), where.host, where.port,
                    ssl=tls, server_hostname=where.host if tls else None,
                )  # fmt: skip
        except Exception as exc:
            await self._inbox.post(("lost", link, conn, describe(exc)))
        finally:
            conn.task = None

    async def _fetch(self, rest: AsyncRest, request: RestRequest, timeout: float) -> None:
        answer = await rest.fetch(request, timeout)  # (0, b"") on any transport failure or timeout
        await self._inbox.post(("rest", None, request, answer))  # fed with the loop's clock as it wakes
