"""The threaded adapter: one loop thread owns the `HybridCore` and every socket; no asyncio.

    with HybridStream(api_key=..., api_secret=..., testnet=True) as stream:
        for event in stream:                                   # a blocking iterator
            ...
    stream = HybridStream(..., on_event=callback); stream.start(); ...; stream.stop()

The loop waits in `selectors` on its non-blocking sockets and a wake-up socket, with the core's deadline as
the timeout (`time.monotonic` clock). Blocking work runs on short helper threads that post their result to
the inbox: dialing (`_sockets.dial`) and every `RestCall` (a thread each, so several may be in flight; they
share one pooled, thread-safe httpx client, `rest.SyncRest`, made at start and closed once the loop has
ended and no fetch is in flight: closing it under a blocking read would not wake that read, only lose its
answer until the timeout). Callbacks run on a dispatcher thread, so a slow
callback never delays a pong; their exceptions are logged and become `CallbackFailed` events.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from bybit_hybrid_core import Action, Config, Dial, Event, Hangup, HybridCore, Link, RestCall, Send

from ._commands import Commands
from ._links import Links
from ._net import LinkStats, describe
from ._queue import Mailbox
from ._sockets import SelectorSocket, dial
from ._startup import LiveWatch
from ._wallclock import WallClock
from .config import settings
from .rest import SyncRest

__all__ = ["HybridStream"]

log = logging.getLogger("bybit_hybrid")
Item = tuple[str, Any, Any, Any]  # (kind, link, connection or request, payload)


class _Conn:
    __slots__ = ("io", "link")

    def __init__(self, link: Link) -> None:
        self.link = link
        self.io: SelectorSocket | None = None  # set once the dial thread hands the socket over

    def close(self) -> None:
        if self.io is not None:
            self.io.close()


class HybridStream(Commands):
    """A Bybit V5 hybrid stream on threads. Arguments: see `bybit_hybrid.config`; `on_event` is called with
    each event on a dispatcher thread (then do not iterate). Commands may be called from any thread."""

    def __init__(
        self, api_key: str | None = None, api_secret: str | None = None, *,
        on_event: Callable[[Event], object] | None = None,
        make_core: Callable[[Config], HybridCore] = HybridCore, **options: Any,
    ) -> None:  # fmt: skip
        self.settings = settings(api_key, api_secret, **options)
        # `make_core`: a core of your own built from the settings' config, e.g. one that records what it is
        # fed (`bybit-hybrid record`); the loop drives whatever it returns.
        self.core = make_core(self.settings.config)
        self._links: Links[_Conn] = Links(self.core)
        self.links: dict[Link, LinkStats] = self._links.stats
        self._on_event = on_event
        self._mailbox = Mailbox(self.settings.max_pending)
        self._live = LiveWatch(self.settings.config, self.core.status)  # status() is read on the loop
        self._inbox: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._helpers: set[threading.Thread] = set()
        self._helpers_lock = threading.Lock()
        self._ended = False  # the loop is over: the last helper out closes the REST client
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        state = "closed" if self._mailbox.closed else "running" if self._threads else "new"
        return f"<HybridStream threaded {state} links={sorted(self._links)} pending={len(self._mailbox)}>"

    # ----------------------------------------------------------------------------- the application side

    def start(self) -> HybridStream:
        started = time.monotonic()
        self._wall = WallClock(started)
        self.core.start(started, self._wall.wall_ms())  # commands work from here on
        self._rest = SyncRest(self.settings.ssl_context, proxy=self.settings.proxy)  # see _release_rest
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._threads.append(threading.Thread(target=self._run, name="bybit-hybrid-loop", daemon=True))
        if self._on_event is not None:
            dispatch = threading.Thread(target=self._mailbox.dispatch, args=(self._on_event,), daemon=True)
            self._threads.append(dispatch)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Close every socket and join every thread (helpers end within `connect_timeout`)."""
        if not self._threads:
            self._mailbox.close()
            return
        self._post(("stop", None, None, None))
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        with self._helpers_lock:  # the loop is over (unless it is us): no helper starts after these
            helpers = list(self._helpers)
        for thread in helpers:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def __enter__(self) -> HybridStream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[Event]:
        while batch := self.next_batch():
            yield from batch

    def next_batch(self, timeout: float | None = None) -> list[Event]:
        """Every pending event, oldest first; waits up to `timeout` for one. [] on timeout or once closed;
        raises what stopped the loop if it failed."""
        return self._mailbox.next_batch(timeout)

    def wait_live(self, timeout: float) -> None:
        """Block until the stream is live: every link the core runs is LIVE and, with credentials, every
        position category was synced over REST. Start the stream first.

        Raises:
            StartupFailed: within `timeout` seconds: at once on a sign that waiting will not help (DNS,
                connection refused, TLS, HTTP 403 geo-block, refused auth; its message and hint say which),
                else when `timeout` passes (`kind == "timed_out"`, with each link's state). The stream keeps
                trying either way; see `bybit_hybrid._startup`.
        """
        if not self._threads:
            raise RuntimeError("start() the stream before wait_live()")
        live = self._live
        since = live.begin()
        deadline = time.monotonic() + timeout
        # The links' states for a timeout's message are read on the loop thread, a moment before the
        # deadline, so that the whole call never takes longer than `timeout`.
        outcome = live.wait(since, max(0.0, timeout - min(0.1, timeout / 10)))
        if outcome is None:
            try:
                status = self.call(lambda core: core.status(), max(0.0, deadline - time.monotonic()))
            except Exception:  # the loop is busy or gone: the message goes without states
                status = {}
            outcome = live.wait(since, max(0.0, deadline - time.monotonic()))
            outcome = outcome or live.watch.timed_out(timeout, status)
        if outcome is not True:
            raise outcome

    @property
    def pending(self) -> int:
        """Events waiting for the application (bounded for market data; see `_queue`)."""
        return len(self._mailbox)

    def call(self, fn: Callable[[HybridCore], Any], timeout: float = 10.0) -> Any:
        """Run `fn(core)` on the loop thread (e.g. `lambda core: core.positions()`) and return its result."""
        if not self._threads or threading.current_thread() is self._threads[0]:
            return fn(self.core)
        future: Future[Any] = Future()
        self._post(("call", None, fn, future))
        return future.result(timeout)

    _command = call

    # ------------------------------------------------------------------------------------------ the loop

    def _post(self, item: Item) -> None:
        with self._mailbox.cond:
            if not self._mailbox.closed:
                self._inbox.put(item)
                with contextlib.suppress(BlockingIOError):  # full: the loop is due to wake anyway
                    self._wake_w.send(b"\0")
                return
        if item[0] == "up":
            item[3].close()  # the loop is gone: nobody will own this connection
        elif item[0] == "call":  # nobody else touches the core any more: run it here
            self._feed(*item, now=0.0)

    def _run(self) -> None:
        failure = None
        try:
            self._loop()
        except Exception as exc:  # a bug, not the network: surface it to the application
            log.exception("bybit_hybrid loop failed")
            failure = exc
        finally:
            self._mailbox.close(failure)
            self._live.close(failure)
            while not self._inbox.empty():  # what came after the end: sockets to close, calls to run
                self._feed(*self._inbox.get(), now=0.0, stopping=True)
            self._links.close_all()
            with self._helpers_lock:
                self._ended = True
            self._release_rest()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _loop(self) -> None:
        clock, core = time.monotonic, self.core
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
            ready = self._selector.select(None if out.deadline is None else max(0.0, out.deadline - clock()))
            for key, mask in ready:
                if key.data is not None:
                    self._io(key.data, mask)
                    continue
                self._wake_r.recv(4096)
                while not self._inbox.empty():
                    if not self._feed(*self._inbox.get_nowait(), now=clock()):
                        return
            if not ready:
                core.tick(max(clock(), out.deadline or 0.0))  # an early wake-up is still due

    def _feed(
        self, kind: str, link: Any, conn: Any, payload: Any, *, now: float, stopping: bool = False
    ) -> bool:
        if kind == "call":
            try:
                payload.set_result(conn(self.core))
            except Exception as exc:
                payload.set_exception(exc)
        elif kind == "rest" and not stopping:
            self.core.rest_answer(conn, payload[0], payload[1], now)
        elif kind == "up" and (stopping or not self._links.current(link, conn)):
            payload.close()  # late: the connection was replaced or hung up while dialing
        elif kind == "up":
            conn.io = SelectorSocket(self._selector, payload, conn)
            self._links.connected(link, now)
        elif kind == "lost" and not stopping:
            self._lost(conn, payload)
        return kind != "stop"

    def _perform(self, action: Action) -> None:
        match action:
            case Dial(link=link, url=url):
                new = self._links.dial(link, _Conn(link))
                settings = self.settings
                self._helper(
                    ("up", link, new, None), dial, url, settings.ssl_context, settings.connect_timeout
                )
            case Send(link=link, data=data):
                conn = self._links.get(link)
                if conn is not None and conn.io is not None:
                    try:
                        conn.io.write(data)
                    except OSError as exc:
                        self._lost(conn, describe(exc))
            case Hangup(link=link):
                self._links.close(link)
            case RestCall(request=request, timeout=timeout):  # every REST action, each on its own thread
                self._helper(("rest", None, request, None), self._rest.fetch, request, timeout)

    def _io(self, conn: _Conn, mask: int) -> None:
        if not self._links.current(conn.link, conn) or conn.io is None:
            return
        try:
            if mask & selectors.EVENT_WRITE:
                conn.io.flush()
            chunks = conn.io.read() if mask & selectors.EVENT_READ else []
        except OSError as exc:
            self._lost(conn, describe(exc))
            return
        for data in chunks:  # a last b"" is end of stream: the core hangs up and redials
            self._links.received(conn.link, data, time.monotonic())

    def _lost(self, conn: _Conn, reason: str) -> None:
        if self._links.current(conn.link, conn):
            self._links.lost(conn.link, time.monotonic(), reason)

    def _helper(self, item: Item, fn: Callable[..., Any], *args: Any) -> None:
        """Run blocking `fn(*args)` on a thread; post `item` with its result (or "lost" if it raised)."""

        def work() -> None:
            try:
                answer: Item = (*item[:3], fn(*args))
            except Exception as exc:
                answer = ("lost", *item[1:3], describe(exc))
            self._post(answer)
            with self._helpers_lock:
                self._helpers.discard(threading.current_thread())
            self._release_rest()

        thread = threading.Thread(target=work, name="bybit-hybrid-io", daemon=True)
        with self._helpers_lock:
            self._helpers.add(thread)
        thread.start()

    def _release_rest(self) -> None:
        """Close the REST client once the loop has ended and no helper uses it (idempotent)."""
        with self._helpers_lock:
            idle = self._ended and not self._helpers
        if idle:
            self._rest.close()
