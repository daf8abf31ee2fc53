"""The stdlib-asyncio adapter: the same `HybridStream` API as the anyio one, with no dependency but asyncio.

    from bybit_hybrid.asyncio import HybridStream
    async with HybridStream(api_key=..., api_secret=..., testnet=True) as stream:
        async for event in stream:
            ...

One task per connection dials (`asyncio.open_connection`: TLS with SNI and verification for wss://) and
reads; the loop feeds inputs with `loop.time()` to the core, performs its actions and sleeps until the next
input or `Output.deadline` (`asyncio.timeout_at`, the same clock). Writes are buffered by the transport,
so the loop never blocks on a slow peer; a peer that stops reading is found by the core's pong deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bybit_hybrid_core import Action, Dial, Event, FetchPositions, Hangup, HybridCore, Link, RestRequest, Send

from ._commands import Commands
from ._links import Links
from ._net import LinkStats, describe, target
from ._queue import AsyncMailbox
from ._startup import LiveWatch
from ._wallclock import WallClock
from .config import settings
from .rest import fetch_asyncio

__all__ = ["HybridStream"]

log = logging.getLogger("bybit_hybrid")
Item = tuple[str, Any, Any, Any]  # (kind, link, connection or request, payload)


class _Conn:
    __slots__ = ("task", "writer")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()  # the task aborts the transport on its way out


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
        self._inbox: asyncio.Queue[Item] = asyncio.Queue(256)
        self._run_task: asyncio.Task[None] | None = None

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

    async def __anext__(self) -> Event:
        return await self._mailbox.next_event()

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
        with contextlib.suppress(asyncio.QueueFull):  # a full inbox means the loop polls soon anyway
            self._inbox.put_nowait(("poll", None, None, None))

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
            self._mailbox.close(failure)
            self._live.close(failure)

    async def _loop(self) -> None:
        clock, core = asyncio.get_running_loop().time, self.core
        while True:
            wall = self._wall.stepped(clock())
            if wall is not None:  # a suspend or an NTP step: auth and REST times must follow
                core.clock(clock(), wall)
            out = core.poll()
            for action in out.actions:
                self._perform(action)
            if out.events:
                self._mailbox.put(out.events)
                self._live.observe(out.events)  # lifecycle log lines, wait_live
            try:
                async with asyncio.timeout_at(out.deadline):
                    item = await self._inbox.get()
            except TimeoutError:
                core.tick(max(clock(), out.deadline or 0.0))  # an early wake-up is still due
            else:
                self._feed(*item, now=clock())

    def _feed(self, kind: str, link: Any, conn: Any, payload: Any, *, now: float) -> None:
        if kind == "rest":
            self.core.positions_snapshot(conn, payload[0], payload[1], now)
        elif kind != "poll":  # "poll" only wakes the loop, after a command
            self._links.report(kind, link, conn, payload, now)

    def _perform(self, action: Action) -> None:
        match action:
            case Dial(link=link, url=url):
                new = self._links.dial(link, _Conn())
                new.task = self._spawn(self._connection(link, new, url))
            case Send(link=link, data=data):
                conn = self._links.get(link)
                if conn is not None and conn.writer is not None and not conn.writer.is_closing():
                    conn.writer.write(data)
            case Hangup(link=link):
                self._links.close(link)
            case FetchPositions(request=request, timeout=timeout):
                self._spawn(self._fetch(request, timeout))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _connection(self, link: Link, conn: _Conn, url: str) -> None:
        try:
            where = target(url)
            tls = self.settings.ssl_context if where.tls else None
            async with asyncio.timeout(
                self.settings.connect_timeout
            ):  # not wait_for: 3.11's can eat a cancel
                reader, conn.writer = await asyncio.open_connection(
                    where.host, where.port, ssl=tls, server_hostname=where.host if tls else None
                )
            await self._inbox.put(("up", link, conn, None))
            while data := await reader.read(65536):
                await self._inbox.put(("data", link, conn, data))
            await self._inbox.put(("data", link, conn, b""))
        except Exception as exc:
            await self._inbox.put(("lost", link, conn, describe(exc)))
        finally:
            if conn.writer is not None:
                conn.writer.transport.abort()  # no TLS goodbye: the core already sent its close frame

    async def _fetch(self, request: RestRequest, timeout: float) -> None:
        answer = await fetch_asyncio(request, self.settings.ssl_context, timeout)
        await self._inbox.put(("rest", None, request, answer))
