"""The REST client behind the core's `RestCall` actions (`FetchPositions`, `FetchTickers`, `FetchTime`):
requests the core built (and signed, where the endpoint needs it) carried by httpx, answers back.

The core builds the request; this module only carries it and gives back `(status, body)`, or `(0, b"")` on
any transport failure or timeout, exactly what `core.rest_answer(request, status, body, now)` expects.
It decides nothing: no retries (the core retries), no redirects followed, no status judged, no pacing (the
core bounds its own rate, `Rollout.rest_rate`).

httpx does the HTTP: one long-lived client per stream keeps HTTP/1.1 connections alive between requests
(several may be in flight at once: the snapshot's pages and categories, position polls, tickers, time),
verifies TLS with the adapter's `ssl.SSLContext` (so `cafile=` keeps working), honours `proxy=` or, by
default, the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), and runs on asyncio and
trio (`AsyncRest`) or blocking (`SyncRest`, thread-safe). Every adapter holds one for the stream's life:

    async with AsyncRest(settings.ssl_context, proxy=settings.proxy) as rest:  # inside the running loop
        status, body = await rest.fetch(request, timeout)      # or `await rest.answer(...)` for the limits

`answer()` also reads Bybit's rate-limit headers (`RestAnswer.limit`, `.limit_status`, `.limit_reset_ms`);
`fetch()` is the `(status, body)` the core takes. `fetch_anyio`, `fetch_asyncio` and `fetch_sync` are
one-shot calls (a client per request, so one connection per request), for scripts and tests.

Importing this module loads no anyio; an `AsyncRest` does (httpx's async transport runs on anyio, on
asyncio as well as trio), so the stdlib asyncio adapter loads anyio once it makes its first REST call.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from bybit_hybrid_core import RestRequest

from ._net import describe
from .config import masked_proxy

__all__ = ["AsyncRest", "RestAnswer", "SyncRest", "fetch_anyio", "fetch_asyncio", "fetch_sync"]

log = logging.getLogger("bybit_hybrid.rest")

# A handful of connections is plenty: the core pages one category at a time. Idle ones are kept a while so
# the next page or category reuses one (httpcore drops any the server has closed before reusing it).
LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=20.0)
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """One answer: `status` 0 and `body` b"" when the transport failed. The `X-Bapi-Limit*` headers, as ints
    when present and numeric: the endpoint's limit per window, the requests left in it, and when it ends
    (wall ms). Failures, and answers without them (a 403 from a CDN, unsigned endpoints), have None."""

    status: int
    body: bytes = field(repr=False)  # up to a few hundred kB of positions: not for log lines
    limit: int | None = None
    limit_status: int | None = None
    limit_reset_ms: int | None = None

    @property
    def pair(self) -> tuple[int, bytes]:
        """`(status, body)`, what `core.rest_answer` takes."""
        return self.status, self.body


FAILED = RestAnswer(0, b"")


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _answered(status: int, headers: Mapping[str, str], body: bytes) -> RestAnswer:
    # httpx.Headers looks names up case-insensitively; Bybit spells them X-Bapi-Limit*.
    return RestAnswer(
        status, body, _header_int(headers, "X-Bapi-Limit"), _header_int(headers, "X-Bapi-Limit-Status"),
        _header_int(headers, "X-Bapi-Limit-Reset-Timestamp"),
    )  # fmt: skip


def _failed(request: RestRequest, exc: BaseException, timeout: float) -> RestAnswer:
    # One line, no secret: the key and signature are in the headers, which are never logged; the URL holds
    # only category, settle coin and cursor, and even the query is cut off. A proxy URL's password is masked.
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        reason = f"timed out after {timeout:g} s"
    else:
        reason = masked_proxy(describe(exc))  # a proxy URL an error message might quote
    log.warning("REST %s %s failed: %s", request.method, request.url.split("?")[0], reason)
    return FAILED


def _client_options(
    ssl_context: ssl.SSLContext, proxy: str | None, trust_env: bool, timeout: float
) -> dict[str, Any]:
    return {
        "verify": ssl_context,  # used as is: trust_env's SSL_CERT_FILE only applies to verify=True
        "proxy": proxy,  # None: the environment's proxies when trust_env (httpx reads them once, here)
        "trust_env": trust_env,
        "timeout": timeout,  # each connect, write, read and pool wait; a request's own timeout overrides
        "limits": LIMITS,
        "http1": True,
        "http2": False,  # HTTP/1.1 keep-alive is enough for a few requests a minute; h2 would be an extra
        "follow_redirects": False,  # a 3xx is an answer for the core to judge, not a hop to take
    }


_C = TypeVar("_C", httpx.AsyncClient, httpx.Client)


class _Pooled(Generic[_C]):
    """What both clients hold: the default timeout and one pooled httpx client made with our options."""

    _client_class: type[_C]

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        proxy: str | None = None,
        trust_env: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self._client: _C = self._client_class(**_client_options(ssl_context, proxy, trust_env, timeout))


class AsyncRest(_Pooled[httpx.AsyncClient]):
    """A pooled httpx.AsyncClient for one stream, on asyncio or trio. Create, use and close it inside the
    running event loop (its connections belong to that loop); concurrent `fetch`es from tasks are fine."""

    _client_class = httpx.AsyncClient

    async def answer(self, request: RestRequest, timeout: float | None = None) -> RestAnswer:
        """Perform `request`; `timeout` (default: the client's) bounds the whole exchange."""
        import anyio  # lazily: importing this module must not load anyio (the stdlib adapters' promise)

        limit = self.timeout if timeout is None else timeout
        try:
            with anyio.fail_after(limit):  # a total bound: httpx's timeouts are per read, not per request
                response = await self._client.request(
                    request.method, request.url, headers=list(request.headers), timeout=limit
                )
            return _answered(response.status_code, response.headers, response.content)
        except Exception as exc:  # every transport failure is (0, b"") for the core, which retries
            return _failed(request, exc, limit)

    async def fetch(self, request: RestRequest, timeout: float | None = None) -> tuple[int, bytes]:
        """`(status, body)` of `request`, or `(0, b"")` on a transport failure or timeout."""
        return (await self.answer(request, timeout)).pair

    async def aclose(self) -> None:
        """Close every pooled connection. Idempotent; a `fetch` after it answers (0, b"")."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class SyncRest(_Pooled[httpx.Client]):
    """A pooled httpx.Client for one stream, blocking. Thread-safe: helper threads may fetch at once."""

    _client_class = httpx.Client

    def answer(self, request: RestRequest, timeout: float | None = None) -> RestAnswer:
        """Perform `request`. A blocking call cannot be cancelled from outside, so `timeout` bounds each
        connect, write and read wait, and the body is abandoned once `timeout` has passed since the start
        (a server trickling bytes cannot hold it much past two timeouts)."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            with self._client.stream(
                request.method, request.url, headers=list(request.headers), timeout=limit
            ) as response:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise TimeoutError
                return _answered(response.status_code, response.headers, b"".join(chunks))
        except Exception as exc:
            return _failed(request, exc, limit)

    def fetch(self, request: RestRequest, timeout: float | None = None) -> tuple[int, bytes]:
        """`(status, body)` of `request`, or `(0, b"")` on a transport failure or timeout."""
        return self.answer(request, timeout).pair

    def close(self) -> None:
        """Close every pooled connection. Idempotent; a `fetch` after it answers (0, b"")."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# One-shot calls: a client per request, closed before returning (scripts, tests). No pool is shared
# between calls on purpose: an async client's connections belong to the event loop that opened them, and
# a hidden module-level pool would outlive loops and hold sockets open.


async def fetch_anyio(request: RestRequest, ssl_context: ssl.SSLContext, timeout: float) -> tuple[int, bytes]:
    """Perform `request` on the running anyio backend (asyncio or trio) with a one-shot client."""
    async with AsyncRest(ssl_context, timeout=timeout) as rest:
        return await rest.fetch(request)


async def fetch_asyncio(
    request: RestRequest, ssl_context: ssl.SSLContext, timeout: float
) -> tuple[int, bytes]:
    """Perform `request` on stdlib asyncio with a one-shot client (the same client as `fetch_anyio`)."""
    return await fetch_anyio(request, ssl_context, timeout)


def fetch_sync(request: RestRequest, ssl_context: ssl.SSLContext, timeout: float) -> tuple[int, bytes]:
    """Perform `request` blocking with a one-shot client; see `SyncRest.answer` for what `timeout` bounds."""
    with SyncRest(ssl_context, timeout=timeout) as rest:
        return rest.fetch(request)
