"""The anyio adapter (asyncio or trio): one loop that owns a `HybridCore` and only moves bytes.

    async with HybridStream(api_key=..., api_secret=..., testnet=True) as stream:
        async for event in stream:
            ...

Per connection one task dials (TCP, then TLS with SNI and verification for wss://) and reads; the loop
feeds every input with `anyio.current_time()` to the core, performs its actions and sleeps until the next
input or `Output.deadline`. Events go to a bounded, conflating queue (`_queue.AsyncMailbox`). Every
`RestCall` runs in a task of its own on one pooled httpx client (`rest.AsyncRest`), opened inside the
running loop for the stream's life, so several may be in flight and reuse kept-alive connections.

What a read costs is paid per read, not per message: a live venue sends each message in its own TLS record,
and anyio's `TLSStream.receive` hands back one record per call (it is one `SSLObject.read`), so the reader
decrypts every further record already in hand (`_drain`) before it posts one item, the loop feeds every
item already posted before it polls the core once, and the application gets one batch per poll. anyio has
no `receive_nowait` on byte streams (agronholm/anyio#482), hence the `SSLObject` read (a public typed
attribute, `TLSAttribute.ssl_object`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import ByteStream, TaskGroup
from anyio.streams.tls import TLSAttribute

from bybit_hybrid_core import Action, Dial, Event, Hangup, HybridCore, Link, RestCall, RestRequest, Send

from ._commands import Commands
from ._inbox import Inbox
from ._links import Links
from ._net import LinkStats, anyio_connect, describe, target
from ._queue import AsyncMailbox
from ._startup import LiveWatch
from ._wallclock import WallClock
from .config import settings
from .rest import AsyncRest

__all__ = ["HybridStream"]

log = logging.getLogger("bybit_hybrid")
Item = tuple[str, Any, Any, Any]  # (kind, link, connection or request, payload)

_READ = 262_144  # one read takes what the transport holds (asyncio's selector reads up to 256 KiB at once)


def _drain(tls: ssl.SSLObject, data: bytes) -> tuple[bytes, BaseException | None]:
    """`data` (one record's plaintext, just received) and every further record the TLS object already holds,
    decrypted without waiting: what one socket read brought in, as one chunk.

    Returns the chunk and what ended the drain if it was not "no whole record left": `anyio.EndOfStream`
    for an end of stream (a close_notify, or the peer's plain close: Bybit sends no close_notify, and
    `anyio_connect` asks for the same leniency) or the TLS error (a bad record), to be raised once the
    chunk is fed. The next `receive()` flushes whatever the read left to send (a TLS 1.3 KeyUpdate).
    """
    chunks = [data]
    try:
        while more := tls.read(_READ):
            chunks.append(more)
        failure: BaseException | None = anyio.EndOfStream()  # b"": the peer's close_notify
    except ssl.SSLWantReadError:  # the rest is still on its way: the usual end
        failure = None
    except ssl.SSLError as exc:
        unexpected_eof = isinstance(exc, ssl.SSLEOFError) or "UNEXPECTED_EOF" in (exc.strerror or "")
        failure = anyio.EndOfStream() if unexpected_eof else exc
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), failure


def _clock() -> Callable[[], float]:
    """The running backend's clock, called at every wake-up: asyncio's own under asyncio (what anyio's
    `current_time` returns there, without its 0.4 µs of dispatch per call), else anyio's (trio's)."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:
        return anyio.current_time


def _call_at() -> Any:
    """asyncio's `loop.call_at` when anyio runs on asyncio (the loop's deadline sleep), else None."""
    try:
        return asyncio.get_running_loop().call_at
    except RuntimeError:
        return None


def _event() -> anyio.Event | asyncio.Event:
    """An event for one sleep of the loop or the consumer: asyncio's own under asyncio (anyio's costs 0.9 µs
    to make, at every sleep; cancel scopes cancel either wait alike), else anyio's (trio's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.Event()
    return asyncio.Event()


def _cause(exc: Exception) -> BaseException:
    """What went wrong underneath: `anyio.connect_tcp` raises "OSError: All connection attempts failed" from
    the attempt's error (or a group of them, one per address), and that ("ConnectionRefusedError: ...") is
    the reason a user (and `StartupFailed`) can act on."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    return cause if isinstance(cause, OSError) else exc


class _Conn:
    __slots__ = ("scope", "stream")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.stream: ByteStream | None = None

    def close(self) -> None:
        self.scope.cancel()  # the task closes the stream on its way out


class HybridStream(Commands):
    """A Bybit V5 hybrid stream on anyio. Arguments: see `bybit_hybrid.config` (args or environment).

    Commands (`track`, `untrack`, `subscribe`, `unsubscribe`) and `core` reads must run on the stream's
    event loop; they act at once and wake the loop.
    """

    def __init__(self, api_key: str | None = None, api_secret: str | None = None, **options: Any) -> None:
        self.settings = settings(api_key, api_secret, **options)
        self.core = HybridCore(self.settings.config)
        self._links: Links[_Conn] = Links(self.core)
        self.links: dict[Link, LinkStats] = self._links.stats
        self._mailbox = AsyncMailbox(self.settings.max_pending, _event)
        self._live = LiveWatch(self.settings.config, self.core.status)
        self._tg: TaskGroup | None = None
        self._tasks: TaskGroup | None = None
        self._rest: AsyncRest | None = None  # made inside the running loop: its connections belong to it
        self._inbox: Inbox[Item] = Inbox(256, _event)

    def __repr__(self) -> str:
        state = "closed" if self._mailbox.closed else "running" if self._tg else "new"
        return f"<HybridStream anyio {state} links={sorted(self._links)} pending={len(self._mailbox)}>"

    # ----------------------------------------------------------------------------- the application side

    async def __aenter__(self) -> HybridStream:
        started = anyio.current_time()
        self._wall = WallClock(started)
        self.core.start(started, self._wall.wall_ms())  # commands work from here on
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                await self._tg.__aexit__(None, None, None)  # re-raises an outer cancellation, hence finally
        finally:
            self._inbox.close()

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
        if self._tg is None:
            raise RuntimeError("enter the stream (async with) before wait_live()")
        live = self._live
        since = live.begin()
        with anyio.move_on_after(timeout):
            while (outcome := live.outcome(since)) is None:
                changed = anyio.Event()
                live.notify(changed.set)  # no await between outcome() and here: no change is missed
                await changed.wait()
            if outcome is True:
                return
            raise outcome
        raise live.watch.timed_out(timeout, self.core.status())

    @property
    def pending(self) -> int:
        """Events waiting for the application (bounded for market data; see `_queue`)."""
        return len(self._mailbox)

    def _command(self, fn: Callable[[HybridCore], object]) -> None:
        fn(self.core)  # misuse raises here, at the caller
        if not self._inbox:  # else the loop polls soon anyway (a closed inbox drops it: nobody will)
            self._inbox.post_nowait(("poll", None, None, None))

    # ------------------------------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                failure = None
                try:
                    self._rest = AsyncRest(self.settings.ssl_context, proxy=self.settings.proxy)
                    await self._loop(self._inbox)
                except Exception as exc:  # a bug, not the network: surface it to the application
                    log.exception("bybit_hybrid loop failed")
                    failure = exc
                finally:
                    tasks.cancel_scope.cancel()  # every connection and REST task ends on the way out
                    self._inbox.close()
                    self._mailbox.close(failure)
                    self._live.close(failure)
        finally:
            if self._rest is not None:  # once no task uses it; shielded: we are likely being cancelled
                with anyio.CancelScope(shield=True):
                    await self._rest.aclose()

    async def _loop(self, inbox: Inbox[Item]) -> None:
        clock, call_at, core, feed = _clock(), _call_at(), self.core, self._links.feed
        now = clock()
        while True:
            wall = self._wall.stepped(now)
            if wall is not None:  # a suspend or an NTP step: auth and REST times must follow
                core.clock(now, wall)
            out = core.poll()
            for action in out.actions:
                await self._perform(action)
            if out.events:
                self._mailbox.put(out.events)
                self._live.observe(out.events)  # lifecycle log lines, wait_live
            if not inbox:  # (posted while an action was sent: no need to sleep, nor a cancel scope)
                # The core's deadline is on this clock already: no relative timeout to work out.
                if call_at is not None:  # asyncio: a timer handle, not a cancel scope (several µs a sleep)
                    await inbox.wait_until(out.deadline, call_at)
                else:
                    with anyio.CancelScope(deadline=math.inf if out.deadline is None else out.deadline):
                        await inbox.wait()
            now = clock()
            items = inbox.take()  # every read since the last poll: one poll, one hand-off for them all
            if not items:
                core.tick(max(now, out.deadline or 0.0))  # an early wake-up is still due
            for item in items:
                feed(*item, now)

    async def _perform(self, action: Action) -> None:
        assert self._tasks is not None
        match action:
            case Dial(link=link, url=url):
                new = self._links.dial(link, _Conn())
                self._tasks.start_soon(self._connection, link, new, url)
            case Send(link=link, data=data):
                conn = self._links.get(link)
                if conn is None or conn.stream is None:
                    return  # the link went away after the core asked; it learns so from the "lost" input
                try:
                    with anyio.fail_after(self.settings.connect_timeout):
                        await conn.stream.send(data)
                except Exception as exc:
                    self._links.lost(link, anyio.current_time(), describe(exc))
            case Hangup(link=link):
                self._links.close(link)
            case RestCall(request=request, timeout=timeout):  # every REST action, each in its own task
                self._tasks.start_soon(self._fetch, request, timeout)

    async def _connection(self, link: Link, conn: _Conn, url: str) -> None:
        with conn.scope:
            try:
                where = target(url)
                with anyio.fail_after(self.settings.connect_timeout):
                    conn.stream = stream = await anyio_connect(where, self.settings.ssl_context)
                await self._inbox.post(("up", link, conn, None))
                tls: ssl.SSLObject | None = stream.extra(TLSAttribute.ssl_object, None)
                failure: BaseException | None = None
                while failure is None:
                    try:
                        data = await stream.receive(_READ)
                    except anyio.EndOfStream:
                        break
                    if tls is not None:
                        data, failure = _drain(tls, data)
                    await self._inbox.post(("data", link, conn, data))
                if failure is not None and not isinstance(failure, anyio.EndOfStream):
                    raise failure
                await self._inbox.post(("data", link, conn, b""))  # end of stream: the core hangs up, redials
            except Exception as exc:
                await self._inbox.post(("lost", link, conn, describe(_cause(exc))))
            finally:
                if conn.stream is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.aclose_forcefully(conn.stream)

    async def _fetch(self, request: RestRequest, timeout: float) -> None:
        assert self._rest is not None
        answer = await self._rest.fetch(request, timeout)  # (0, b"") on any transport failure or timeout
        await self._inbox.post(("rest", None, request, answer))  # fed with the loop's clock as it wakes
