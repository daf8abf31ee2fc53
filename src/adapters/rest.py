"""The REST fetcher behind the core's `FetchPositions` action: one signed GET, its status and body.

The core signs the request; this module only carries it (HTTP/1.1, one request per connection, TLS with SNI
and verification for https://) and gives back `(status, body)`, or `(0, b"")` on any transport failure or
when `timeout` seconds pass, exactly what `core.positions_snapshot(request, status, body, now)` expects.
Three flavours share one sans-IO exchange built on h11: anyio, stdlib asyncio, and blocking (`http.client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import ssl

import h11

from bybit_hybrid_core import RestRequest

from ._net import Target, anyio_connect, describe, target

__all__ = ["HttpExchange", "fetch_anyio", "fetch_asyncio", "fetch_sync"]

log = logging.getLogger("bybit_hybrid.rest")
FAILED: tuple[int, bytes] = (0, b"")


class HttpExchange:
    """One HTTP/1.1 request and its response, sans-IO: `to_send` first, then `feed` bytes until `result`."""

    def __init__(self, request: RestRequest, where: Target) -> None:
        self._conn = h11.Connection(h11.CLIENT)
        headers = [("Host", where.host_header), ("Connection", "close"), *request.headers]
        self.to_send = self._conn.send(h11.Request(method=request.method, target=where.path, headers=headers))
        self.to_send += self._conn.send(h11.EndOfMessage()) or b""
        self._status = 0
        self._body = bytearray()
        self.result: tuple[int, bytes] | None = None

    def feed(self, data: bytes) -> None:
        """Bytes from the server; b"" at end of stream. Raises h11.RemoteProtocolError on a bad response."""
        self._conn.receive_data(data)
        while self.result is None:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Response):
                self._status = event.status_code
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.result = (self._status, bytes(self._body))
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("connection closed before the response ended")


def _failed(request: RestRequest, exc: BaseException) -> tuple[int, bytes]:
    # The URL holds only the category, settle coin and cursor; the key and signature are in the headers.
    log.warning("REST %s %s failed: %s", request.method, request.url.split("?")[0], describe(exc))
    return FAILED


async def fetch_anyio(request: RestRequest, ssl_context: ssl.SSLContext, timeout: float) -> tuple[int, bytes]:
    """Perform `request` on the running anyio backend (asyncio or trio)."""
    import anyio  # lazily: the stdlib-asyncio and threaded adapters must not need anyio

    try:
        with anyio.fail_after(timeout):
            where = target(request.url)
            stream = await anyio_connect(where, ssl_context)
            try:
                exchange = HttpExchange(request, where)
                await stream.send(exchange.to_send)
                while exchange.result is None:
                    try:
                        exchange.feed(await stream.receive())
                    except anyio.EndOfStream:
                        exchange.feed(b"")
                return exchange.result
            finally:
                await anyio.aclose_forcefully(stream)
    except Exception as exc:  # every transport failure is (0, b"") for the core, which retries
        return _failed(request, exc)


async def fetch_asyncio(
    request: RestRequest, ssl_context: ssl.SSLContext, timeout: float
) -> tuple[int, bytes]:
    """Perform `request` with stdlib asyncio streams."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            where = target(request.url)
            tls = ssl_context if where.tls else None
            reader, writer = await asyncio.open_connection(
                where.host, where.port, ssl=tls, server_hostname=where.host if tls else None
            )
            exchange = HttpExchange(request, where)
            writer.write(exchange.to_send)
            while exchange.result is None:
                exchange.feed(await reader.read(65536))
            return exchange.result
    except Exception as exc:
        return _failed(request, exc)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()


def fetch_sync(request: RestRequest, ssl_context: ssl.SSLContext, timeout: float) -> tuple[int, bytes]:
    """Perform `request` blocking (`http.client`); `timeout` bounds the connect and every read."""
    conn: http.client.HTTPConnection | None = None
    try:
        where = target(request.url)
        if where.tls:
            conn = http.client.HTTPSConnection(where.host, where.port, timeout=timeout, context=ssl_context)
        else:
            conn = http.client.HTTPConnection(where.host, where.port, timeout=timeout)
        conn.request(request.method, where.path, headers=dict(request.headers))
        response = conn.getresponse()
        return response.status, response.read()
    except Exception as exc:
        return _failed(request, exc)
    finally:
        if conn is not None:
            conn.close()
