"""The threaded adapter: one loop thread owns the `HybridCore` and every socket; no asyncio.

    with HybridStream(api_key=..., api_secret=..., testnet=True) as stream:
        for event in stream:                                   # a blocking iterator
            ...
    stream = HybridStream(..., on_event=callback); stream.start(); ...; stream.stop()

The loop waits in `selectors` on its non-blocking sockets and a wake-up socket, with the core's deadline as
the timeout (`time.monotonic` clock). Blocking work runs on short helper threads that hand their result back
through the inbox: dialing (TCP, then TLS with SNI and verification) and the REST fetch. Callbacks run on a
dispatcher thread, so a slow callback never delays a pong; their exceptions become `CallbackFailed` events.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._core import HybridCore
from bybit_hybrid_core._events import Action, Dial, Event, FetchPositions, Hangup, RestRequest, Send

from ._net import LinkStats, describe, target
from ._queue import CallbackFailed, EventBuffer
from .config import settings
from .rest import fetch_sync

__all__ = ["HybridStream"]

log = logging.getLogger("bybit_hybrid")
Item = tuple[str, Any, Any, Any]  # (kind, link, connection or request, payload)
_RETRY = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Conn:
    __slots__ = ("eof", "link", "out", "sock")

    def __init__(self, link: Link) -> None:
        self.link = link
        self.sock: socket.socket | None = None
        self.out = bytearray()
        self.eof = False


class HybridStream:
    """A Bybit V5 hybrid stream on threads. Arguments: see `bybit_hybrid.config`; `on_event` is called with
    each event on a dispatcher thread (then do not iterate). Commands may be called from any thread."""

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        on_event: Callable[[Event], object] | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings(api_key, api_secret, **options)
        self.core = HybridCore(self.settings.config)
        self.links: dict[Link, LinkStats] = {link: LinkStats() for link in Link}
        self._on_event = on_event
        self._buffer = EventBuffer(self.settings.max_pending)
        self._cond = threading.Condition()  # guards _buffer, _closed, _failure
        self._inbox: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._conns: dict[Link, _Conn] = {}
        self._helpers: set[threading.Thread] = set()
        self._threads: list[threading.Thread] = []
        self._failure: BaseException | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._threads else "new"
        return f"<HybridStream threaded {state} links={sorted(self._conns)} pending={len(self._buffer)}>"

    # ----------------------------------------------------------------------------- the application side

    def start(self) -> HybridStream:
        self.core.start(time.monotonic(), time.time_ns() // 1_000_000)  # commands work from here on
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._threads.append(threading.Thread(target=self._run, name="bybit-hybrid-loop", daemon=True))
        if self._on_event is not None:
            self._threads.append(
                threading.Thread(target=self._dispatch, name="bybit-hybrid-events", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Close every socket and join every thread (helpers end within `connect_timeout`)."""
        if not self._threads:
            self._closed = True
            return
        self._post(("stop", None, None, None))
        for thread in [*self._threads, *list(self._helpers)]:
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
        with self._cond:
            self._cond.wait_for(lambda: self._buffer or self._closed, timeout)
            if self._buffer:
                return self._buffer.drain()
            if self._failure is not None:
                raise self._failure
            return []

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    def track(self, symbol: str, **kwargs: Any) -> None:
        self.call(lambda core: core.track(symbol, **kwargs))

    def untrack(self, symbol: str, **kwargs: Any) -> None:
        self.call(lambda core: core.untrack(symbol, **kwargs))

    def subscribe(self, topic: str, **kwargs: Any) -> None:
        self.call(lambda core: core.subscribe(topic, **kwargs))

    def unsubscribe(self, topic: str, **kwargs: Any) -> None:
        self.call(lambda core: core.unsubscribe(topic, **kwargs))

    def call(self, fn: Callable[[HybridCore], Any], timeout: float = 10.0) -> Any:
        """Run `fn(core)` on the loop thread (e.g. `lambda core: core.positions()`) and return its result."""
        if not self._threads or threading.current_thread() is self._threads[0]:
            return fn(self.core)
        future: Future[Any] = Future()
        self._post(("call", None, fn, future))
        return future.result(timeout)

    def _dispatch(self) -> None:
        assert self._on_event is not None
        while batch := self.next_batch():
            for event in batch:
                try:
                    self._on_event(event)
                except Exception as exc:
                    log.exception("on_event raised on %s; the stream goes on", type(event).__name__)
                    if not isinstance(event, CallbackFailed):  # never a loop of reports
                        with self._cond:
                            self._buffer.put(
                                CallbackFailed(
                                    link=event.link,
                                    at=event.at,
                                    error=describe(exc),
                                    event=type(event).__name__,
                                )
                            )

    # ------------------------------------------------------------------------------------------ the loop

    def _post(self, item: Item) -> None:
        with self._cond:
            if not self._closed:
                self._inbox.put(item)
                with contextlib.suppress(BlockingIOError):  # full: the loop is due to wake anyway
                    self._wake_w.send(b"\0")
                return
        if item[0] == "up":
            item[3].close()  # the loop is gone: nobody will own this socket

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug, not the network: surface it to the application
            log.exception("bybit_hybrid loop failed")
            self._failure = exc
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            while not self._inbox.empty():  # sockets that came up after the loop ended
                self._feed(*self._inbox.get(), now=0.0, stopping=True)
            for link in list(self._conns):
                self._close(link)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _loop(self) -> None:
        clock, core = time.monotonic, self.core
        while True:
            out = core.poll()
            for action in out.actions:
                self._perform(action)
            if out.events:
                with self._cond:
                    self._buffer.extend(out.events)
                    self._cond.notify_all()
            wait = None if out.deadline is None else max(0.0, out.deadline - clock())
            fed = False
            for key, mask in self._selector.select(wait):
                if key.data is None:
                    self._wake_r.recv(4096)
                    while not self._inbox.empty():
                        if not self._feed(*self._inbox.get_nowait(), now=clock()):
                            return
                else:
                    if mask & selectors.EVENT_WRITE:
                        self._flush(key.data)
                    if mask & selectors.EVENT_READ:
                        self._read(key.data)
                fed = True
            if not fed:
                core.tick(max(clock(), out.deadline or 0.0))  # an early wake-up is still due

    def _feed(
        self, kind: str, link: Any, conn: Any, payload: Any, *, now: float, stopping: bool = False
    ) -> bool:
        if kind == "stop":
            return False
        if kind == "call" and stopping:
            payload.cancel()
        elif kind == "call":
            try:
                payload.set_result(conn(self.core))
            except Exception as exc:
                payload.set_exception(exc)
        elif kind == "rest" and not stopping:
            self.core.positions_snapshot(conn, payload[0], payload[1], now)
        elif kind == "up" and (stopping or self._conns.get(link) is not conn):
            payload.close()  # late: the connection was replaced or hung up while dialing
        elif kind == "up":
            conn.sock = payload
            self._selector.register(payload, selectors.EVENT_READ, conn)
            self.links[link].connects += 1
            self.core.connected(link, now)
        elif kind == "lost" and self._conns.get(link) is conn and not stopping:
            self._close(link)
            self.core.lost(link, now, payload)
        return True

    def _perform(self, action: Action) -> None:
        match action:
            case Dial(link=link, url=url):
                self._close(link)
                conn = self._conns[link] = _Conn(link)
                self.links[link].dials += 1
                self._helper(self._dial, link, conn, url)
            case Send(link=link, data=data):
                conn = self._conns.get(link)
                if conn is not None and conn.sock is not None:
                    conn.out += data
                    self._flush(conn)
            case Hangup(link=link):
                self._close(link)
            case FetchPositions(request=request, timeout=timeout):
                self._helper(self._fetch, request, timeout)

    def _read(self, conn: _Conn) -> None:
        for _ in range(16):  # then let the core answer (and other links speak) before reading on
            if self._conns.get(conn.link) is not conn or conn.sock is None or conn.eof:
                return
            try:
                data = conn.sock.recv(65536)
            except _RETRY:
                return
            except OSError as exc:
                self._close(conn.link)
                self.core.lost(conn.link, time.monotonic(), describe(exc))
                return
            stats = self.links[conn.link]
            stats.bytes_in += len(data)
            stats.last_receive = time.monotonic()
            self.core.receive(conn.link, data, stats.last_receive)
            if not data:  # end of stream: stop reading; the core hangs up and redials
                conn.eof = True
                self._watch(conn)

    def _flush(self, conn: _Conn) -> None:
        if self._conns.get(conn.link) is not conn or conn.sock is None:
            return
        try:
            while conn.out:
                del conn.out[: conn.sock.send(conn.out[:65536])]
        except _RETRY:
            pass
        except OSError as exc:
            self._close(conn.link)
            self.core.lost(conn.link, time.monotonic(), describe(exc))
            return
        self._watch(conn)

    def _watch(self, conn: _Conn) -> None:
        assert conn.sock is not None
        events = (0 if conn.eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.out else 0)
        key = self._selector.get_map().get(conn.sock)
        if key is not None and not events:
            self._selector.unregister(conn.sock)
        elif key is None and events:
            self._selector.register(conn.sock, events, conn)
        elif key is not None and key.events != events:
            self._selector.modify(conn.sock, events, conn)

    def _close(self, link: Link) -> None:
        conn = self._conns.pop(link, None)
        if conn is not None and conn.sock is not None:
            if conn.sock in self._selector.get_map():
                self._selector.unregister(conn.sock)
            conn.sock.close()

    # --------------------------------------------------------------------------------- helper threads

    def _helper(self, fn: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(
            target=self._helper_main, args=(fn, *args), name="bybit-hybrid-io", daemon=True
        )
        self._helpers.add(thread)
        thread.start()

    def _helper_main(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        finally:
            self._helpers.discard(threading.current_thread())

    def _dial(self, link: Link, conn: _Conn, url: str) -> None:
        try:
            where = target(url)
            sock = socket.create_connection((where.host, where.port), timeout=self.settings.connect_timeout)
            if where.tls:
                try:
                    sock = self.settings.ssl_context.wrap_socket(sock, server_hostname=where.host)
                except BaseException:
                    sock.close()
                    raise
            sock.setblocking(False)
        except Exception as exc:
            self._post(("lost", link, conn, describe(exc)))
        else:
            self._post(("up", link, conn, sock))

    def _fetch(self, request: RestRequest, timeout: float) -> None:
        self._post(("rest", None, request, fetch_sync(request, self.settings.ssl_context, timeout)))
