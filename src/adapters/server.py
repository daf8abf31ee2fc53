"""Serve the sans-IO `FakeExchange` over real sockets on 127.0.0.1, plain or TLS, from a background thread.

Every accepted TCP connection is peeked at: an HTTP upgrade to WebSocket goes to `exchange.accept/receive`
(the exchange routes by path: `/v5/public/{category}`, `/v5/private`); any other request is answered with
`exchange.rest(...)` (e.g. `GET /v5/position/list`, `/v5/market/tickers`, `/v5/market/time`), and the
connection is kept alive for the client's next request (HTTP/1.1, unless it says `Connection: close`), as
Bybit's is, so pooled clients reuse it. The exchange's timers run on the same loop.
With `tls=True` a throwaway CA and a certificate for 127.0.0.1/localhost are made at start (trustme); clients
trust `ca_file` (or `client_ssl_context()`).

    with ServedExchange(tls=True) as served:
        stream = HybridStream(served.api_key, served.api_secret, endpoints=served.endpoints,
                              cafile=served.ca_file)
        served.call(lambda ex: ...)            # anything on the exchange, run on its thread

Faults for tests: `kill()` / `revive()` (stop listening and drop every connection, then listen again on the
same port), `drop_connections()`, `freeze()` (current connections go silent both ways: a half-open link).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bybit_hybrid_core import Endpoints

__all__ = ["ServedExchange", "main"]

log = logging.getLogger("bybit_hybrid.server")
T = TypeVar("T")
_HEAD_LIMIT = 65536
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


class _Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively (HTTP field names are; RFC 9110 section 5.1)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = dict(items)
        self._lower = {k.lower(): v for k, v in items}

    def __getitem__(self, key: str) -> str:
        return self._lower[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _parse_head(head: bytes) -> tuple[str, str, _Headers]:
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    fields = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return method, target, _Headers([(k, v) for k, v in fields])


class ServedExchange:
    """A `FakeExchange` on real sockets. Thread-safe: every method may be called from any thread."""

    def __init__(
        self,
        exchange: Any = None,
        *,
        tls: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        api_key: str = "test-key",
        api_secret: str = "test-secret",
        **exchange_options: Any,
    ) -> None:
        # The exchange's `now` is seconds of this server's monotonic clock since `_t0`. A given exchange keeps
        # its own wall clock (`start_ms` at now == 0); one made here tells the real time, so that auth
        # `expires`, REST timestamps and the `ts` of every message agree with the client's clock: `start()`
        # ties its now == 0 to `start_ms` on the real clock (`_tie_clock`).
        self._own_clock = exchange is None
        if exchange is None:
            from bybit_hybrid_core.testing import FakeExchange  # slow (the venue): before the clock is read

            start_ms = time.time_ns() // 1_000_000
            exchange = FakeExchange(seed, api_key, api_secret, start_ms=start_ms, **exchange_options)
        self._t0 = time.monotonic()
        self.exchange = exchange
        self.api_key, self.api_secret = api_key, api_secret
        self.host, self.port, self.tls = host, port, tls
        self.rest_requests = 0  # REST requests answered since start
        self.rest_log: list[tuple[str, str]] = []  # (method, path without the query) of each, in order
        self.tcp_connections = 0  # TCP connections accepted since start (REST ones are kept alive)
        self.rest_in_flight = 0  # REST requests held back by the exchange's REST delay fault right now
        self.rest_peak = 0  # the most ever in flight at once
        self.accepted = 0  # WebSocket connections accepted since start
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server_ssl: ssl.SSLContext | None = None
        self.ca_file: str | None = None
        self._writers: dict[Any, asyncio.StreamWriter] = {}  # WebSocket connections by exchange conn id
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}  # every TCP connection
        self._frozen: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop_asked = threading.Event()  # seen by the thread even before its loop exists
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"ServedExchange({self.ws_url if self._thread else 'stopped'}, tls={self.tls})"

    # ------------------------------------------------------------------------------------- public API

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints.custom(self.ws_url, self.rest_url)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this server's CA (only meaningful with tls=True)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def start(self) -> ServedExchange:
        if self._thread is not None:
            raise RuntimeError("ServedExchange is already started")
        self._thread = threading.Thread(target=self._main, name="served-exchange", daemon=True)
        try:
            if self.tls:
                self._make_certificate()
            self._tie_clock()
            _start_unsignalled(self._thread)
            self._ready.wait(10)
        except BaseException:  # e.g. Ctrl-C while starting: leave no thread or certificate behind
            self.stop()
            raise
        if self._failure is not None or not self._ready.is_set() or self._stop_asked.is_set():
            self.stop()
            raise RuntimeError(f"ServedExchange could not start: {self._failure!r}")
        log.info("FakeExchange served at %s and %s (CA file: %s)", self.ws_url, self.rest_url, self.ca_file)
        return self

    def stop(self) -> None:
        """Close every socket, stop the thread and remove the certificate files. Idempotent; prompt at any
        point of `start()` too (the thread looks at `_stop_asked` once its loop is up)."""
        self._stop_asked.set()
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the thread is ending
                loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join(10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ServedExchange:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        """Run `fn(exchange, *args)` on the server's thread and return its result; sends what it caused."""

        async def run() -> T:
            result = fn(self.exchange, *args)
            self._kick()
            return result

        return self._run(run(), timeout)

    def kill(self) -> None:
        """Stop listening and drop every connection (no close frame), like a crashed server."""
        self._run(self._kill(), 10)

    def revive(self) -> None:
        """Listen again on the same port after `kill()`."""
        self._run(self._listen(), 10)

    def drop_connections(self) -> None:
        """Drop every current connection without a close frame; keep listening."""
        self._run(self._drop(), 10)

    def freeze(self) -> int:
        """Make every current connection silent both ways (a half-open link); returns how many."""

        async def run() -> int:
            self._frozen.update(self._writers)
            return len(self._writers)

        return self._run(run(), 10)

    @property
    def connections(self) -> int:
        """Open WebSocket connections right now."""
        return len(self._writers)

    # ------------------------------------------------------------------------------------- the thread

    def _make_certificate(self) -> None:
        try:
            import trustme  # only needed for TLS, and only here: the `sim` (and `test`) extra
        except ImportError as exc:  # say how to get it rather than a bare ModuleNotFoundError
            raise ModuleNotFoundError(
                'ServedExchange(tls=True) needs trustme for its throwaway CA: pip install "bybit-hybrid[sim]"'
                " (or serve plain ws:// with tls=False)",
                name="trustme",
            ) from exc

        ca = trustme.CA()
        cert = ca.issue_cert(self.host, "localhost")
        self._server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._server_ssl)
        self._tmp = tempfile.TemporaryDirectory(prefix="bybit-hybrid-ca-")
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)

    def _tie_clock(self) -> None:
        """Put the exchange's now == 0 at `start_ms` of the real clock, read now, when serving starts.

        Its wall clock is `start_ms + now`, and `now` runs on the monotonic clock, so from here on it tells
        the real time (a system clock step later is not followed: the exchange's clock stays steady, as a
        venue's does). A given exchange keeps its own wall clock."""
        if not self._own_clock:
            return
        mono, wall_ms = time.monotonic(), time.time_ns() // 1_000_000  # read together: one instant
        behind = max(0.0, (wall_ms - self.exchange.start_ms) / 1000)  # never before now == 0
        self._t0 = mono - behind

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("ServedExchange is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a server thread must not die silently
            self._failure = exc
        finally:
            self._ready.set()  # start() waits no longer once this thread is done, however it ended

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.get_running_loop()  # last: stop() may look at _stopping once this is set
        if self._stop_asked.is_set():  # stop() came before the loop was there to be told
            return
        await self._listen()
        timers = asyncio.create_task(self._timers())
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            timers.cancel()
            await self._kill()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, ssl=self._server_ssl, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _kill(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._drop(everything=True)
        if server is not None:
            await server.wait_closed()

    async def _drop(self, everything: bool = False) -> None:
        writers = self._handlers.values() if everything else self._writers.values()
        for writer in list(writers):
            writer.transport.abort()
        # Let the handlers see their connections go and end by themselves: a handler task cancelled by
        # asyncio.run's teardown makes Python 3.11's stream callback log a spurious CancelledError.
        pending = list(self._handlers) if everything else []
        await asyncio.wait(pending, timeout=5) if pending else await asyncio.sleep(0)

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _kick(self) -> None:
        """Perform what the exchange asked for and let the timer task look at the new deadline."""
        self._pump()
        self._wake.set()

    def _pump(self) -> None:
        # ServerSend(conn, data) or ServerClose(conn); told apart by `data` so any exchange-like object fits.
        for action in self.exchange.poll():
            writer = self._writers.get(action.conn)
            data = getattr(action, "data", None)
            if data is not None:
                if writer is not None and action.conn not in self._frozen:
                    writer.write(data)
            elif writer is not None:
                del self._writers[action.conn]
                self._frozen.discard(action.conn)
                writer.close()

    async def _timers(self) -> None:
        while True:
            deadline = self.exchange.deadline()
            self._wake.clear()
            wait = None if deadline is None else max(0.0, deadline - self._now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self.exchange.tick(self._now())
            self._pump()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        self.tcp_connections += 1
        try:
            data: bytes | None = b""  # read and not used yet: the next request may come in the same read
            while data is not None:  # REST requests one after another on a kept-alive connection
                while b"\r\n\r\n" not in data and len(data) < _HEAD_LIMIT:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    data += chunk
                method, target, headers = _parse_head(data)
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._serve_websocket(reader, writer, data)
                    return
                data = await self._rest_request(reader, writer, data, method, target, headers)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # a client that went away mid-request; nothing to answer
        finally:
            del self._handlers[task]
            writer.close()

    async def _rest_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, method: str,
        target: str, headers: _Headers,
    ) -> bytes | None:  # fmt: skip
        """Answer the request at the start of `data`; return what follows it, or None to close."""
        head, complete, body = data.partition(b"\r\n\r\n")
        declared = headers.get("content-length", "0").strip()
        length = min(int(declared), _HEAD_LIMIT) if declared.isdigit() else 0
        if length > len(body):  # a POST's JSON body, read to its Content-Length
            body += await reader.readexactly(length - len(body))
        latency = getattr(self.exchange, "rest_latency", None)  # the exchange's REST delay fault:
        if latency is not None and (delay := latency(target)) > 0:  # the request reaches it late
            self.rest_in_flight += 1
            self.rest_peak = max(self.rest_peak, self.rest_in_flight)
            try:
                await asyncio.sleep(delay)
            finally:
                self.rest_in_flight -= 1
        # HTTP/1.1 keeps the connection unless the client says close (RFC 9112 section 9.3); an HTTP/1.0
        # client, or a head too long to end, gets its answer and the connection closed.
        version = head.split(b"\r\n", 1)[0].rsplit(b" ", 1)[-1]
        keep = bool(complete) and version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        self._serve_rest(writer, method, target, headers, body[:length], keep_alive=keep)
        if not keep:
            return None
        await writer.drain()  # a client that sends and never reads is not buffered without bound
        return body[length:]

    def _serve_rest(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: _Headers, body: bytes = b"",
        *, keep_alive: bool = False,
    ) -> None:  # fmt: skip
        self.rest_requests += 1
        self.rest_log.append((method, target.split("?", 1)[0]))
        extra: Mapping[str, str] = {}
        respond = getattr(self.exchange, "rest_response", None)
        if respond is not None:  # with the rate-limit headers; an exchange-like object may have only `rest`
            status, extra, body = respond(method, target, headers, self._now(), body)
        else:
            status, body = self.exchange.rest(method, target, headers, self._now())
        self._kick()
        fields = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\nContent-Type: application/json\r\n"
            f"{fields}Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}"
            "\r\n\r\n"
        )
        writer.write(head.encode() + body)

    async def _serve_websocket(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
    ) -> None:
        conn = self.exchange.accept(self._now())
        self.accepted += 1
        self._writers[conn] = writer
        try:
            data = head
            while conn in self._writers:
                if conn not in self._frozen or not data:
                    self.exchange.receive(conn, data, self._now())
                    self._kick()
                if not data:
                    break
                data = await reader.read(65536)
        except (OSError, ssl.SSLError):
            pass
        finally:
            if self._writers.pop(conn, None) is not None:  # gone without the exchange asking for it
                self._frozen.discard(conn)
                self.exchange.disconnected(conn, self._now())
                self._kick()


def _start_unsignalled(thread: threading.Thread) -> None:
    """Start `thread` with SIGINT and SIGTERM blocked in it and in every thread it starts.

    Python runs signal handlers in the main thread only, but the kernel hands a process signal to any
    thread that does not block it; one that lands here would set Python's flag without waking a main
    thread asleep in a lock or a queue (e.g. `bybit-hybrid sim` waiting for a command line)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        thread.start()
        return
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def main(argv: list[str] | None = None) -> None:
    """`python -m bybit_hybrid.server [--plain] [--port N]`: serve until Ctrl-C; print what clients need."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve the FakeExchange on 127.0.0.1")
    parser.add_argument("--plain", action="store_true", help="no TLS (ws:// and http://)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with ServedExchange(tls=not args.plain, port=args.port, seed=args.seed) as served:
        print(f"websocket: {served.ws_url}\nrest:      {served.rest_url}")
        print(f"api key:   {served.api_key}\napi secret: {served.api_secret}  (test values)")
        if served.ca_file:
            print(f"CA file:   {served.ca_file}  (trust it: cafile=... or SSL_CERT_FILE)")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
