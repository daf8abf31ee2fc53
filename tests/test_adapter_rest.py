"""The REST client behind every RestCall (httpx), over real TCP and TLS on 127.0.0.1 only.

`AsyncRest` runs on stdlib asyncio (asyncio.run) and on trio (trio.run), `SyncRest` blocking; the one-shot
`fetch_anyio` / `fetch_asyncio` / `fetch_sync` (for scripts) are checked too. Servers
here: the served FakeExchange (signed answers, rate-limit headers), an `EchoExchange` behind the same server
(what arrived, byte for byte), a keep-alive HTTP/1.1 server that counts its connections, a CONNECT proxy, a
listener that never answers, and a port nobody listens on. Nothing asserts httpx's own message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import pytest
import trustme
from bybit_hybrid.config import settings
from bybit_hybrid.rest import AsyncRest, RestAnswer, SyncRest, fetch_anyio, fetch_asyncio, fetch_sync
from bybit_hybrid.server import ServedExchange

from adapter_helpers import TRIO_SKIP, TRIO_WORKS, EchoExchange, no_leaks
from bybit_hybrid_core._config import Credentials
from bybit_hybrid_core._events import RestRequest
from bybit_hybrid_core._plane.rest import build_request

HEADERS = (("X-BAPI-API-KEY", "key"), ("X-BAPI-SIGN", "abc"), ("X-BAPI-TIMESTAMP", "1"))
BODY = b'{"retCode":0,"retMsg":"OK","result":{"list":[]}}' * 200  # big enough for several reads
CURSOR_QUERY = "category=linear&settleCoin=USDT&limit=200&cursor=0%3A1657711949945%2C0%3A1657711949945"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
TRIO = pytest.mark.skipif(not TRIO_WORKS, reason=TRIO_SKIP)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own proxy settings must not route these loopback tests; the proxy tests set their own."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def request(base: str, query: str = "category=linear&settleCoin=USDT&limit=200") -> RestRequest:
    return RestRequest(
        id=1, method="GET", url=f"{base}/v5/position/list?{query}", headers=HEADERS, category="linear"
    )


def signed(served: ServedExchange, secret: str | None = None) -> RestRequest:
    credentials = Credentials(served.api_key, secret or served.api_secret)
    action = build_request(
        request_id=1, rest_base=served.rest_url, credentials=credentials, wall_ms=time.time_ns() // 1_000_000,
        recv_window_ms=5000, category="linear", settle_coin="USDT",
    )  # fmt: skip
    return action.request


# ------------------------------------------------------------------- running one client on each backend

CLIENTS = ["sync", "asyncio", pytest.param("trio", marks=TRIO)]
Use = Callable[[Any], Any]  # gets an AsyncRest (returns an awaitable) or a SyncRest (returns the result)


def with_client(flavour: str, context: ssl.SSLContext, use: Use, **options: Any) -> Any:
    """Open a client of `flavour`, hand it to `use`, close it; the loop (if any) is the flavour's own runner:
    asyncio.run for stdlib asyncio, trio.run for trio (no anyio runner: AsyncRest must not need one)."""
    if flavour == "sync":
        with SyncRest(context, **options) as rest:
            return use(rest)

    async def main() -> Any:
        async with AsyncRest(context, **options) as rest:
            return await use(rest)

    if flavour == "asyncio":
        return asyncio.run(main())
    import trio

    return trio.run(main)


def gather(flavour: str, rest: Any, calls: list[Use]) -> Any:
    """Run `calls` one after the other on `rest`: awaited when async (as a coroutine for `with_client`)."""
    if flavour == "sync":
        return [call(rest) for call in calls]

    async def run() -> list[Any]:
        return [await call(rest) for call in calls]

    return run()


# --------------------------------------------------------------------------------------- test servers


@pytest.fixture(scope="module")
def exchange() -> Iterator[ServedExchange]:
    """The real FakeExchange over TLS: it checks the signature of what arrives and sends X-Bapi-Limit*."""
    with ServedExchange(tls=True) as served:
        yield served


Served = tuple[ServedExchange, EchoExchange]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    echo = EchoExchange(rest_answer=(200, BODY))
    with ServedExchange(echo, tls=True) as server:
        yield server, echo


class _KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection open after an answer with a Content-Length
    server: KeepAliveServer

    def do_GET(self) -> None:
        self.server.targets.append(self.path)
        self.send_response(200)
        for name, value in (("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class KeepAliveServer(http.server.ThreadingHTTPServer):
    """An HTTP/1.1 server over TLS (trustme) that keeps connections alive and counts those it accepts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        ca = trustme.CA()
        server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_side)
        self.socket = server_side.wrap_socket(self.socket, server_side=True)
        self.client_context = ssl.create_default_context()
        ca.configure_trust(self.client_context)
        self.connections = 0
        self.targets: list[str] = []
        self.url = f"https://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()  # the TLS handshake ran here
        self.connections += 1
        return accepted


class _TunnelHandler(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            if not (chunk := self.request.recv(4096)):
                return
            head += chunk
        method, where = head.split(b" ")[:2]
        self.server.tunnels.append(f"{method.decode()} {where.decode()}")
        host, port = where.decode().rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True)
            back.start()
            _pipe(self.request, upstream)
            back.join(5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)  # pass the end of stream on: the served exchange closes after answering


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A tiny HTTP CONNECT proxy on 127.0.0.1: records each tunnel asked for, then pipes bytes both ways."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TunnelHandler)
        self.tunnels: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


S = TypeVar("S", bound=socketserver.BaseServer)


@contextlib.contextmanager
def serving(server: S) -> Iterator[S]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens here once closed


# -------------------------------------------------------------------------------------------- answers


@pytest.mark.parametrize("flavour", CLIENTS)
def test_a_signed_position_list_is_answered_with_its_rate_limits(
    flavour: str, exchange: ServedExchange
) -> None:
    context = settings(cafile=exchange.ca_file, environ={}).ssl_context  # the adapters' cafile= path
    good, forged = signed(exchange), signed(exchange, "not-the-secret")
    calls = [lambda r: r.answer(good), lambda r: r.answer(forged)]
    with no_leaks():
        right, wrong = with_client(flavour, context, lambda rest: gather(flavour, rest, calls))
    assert isinstance(right, RestAnswer) and right.status == 200
    assert json.loads(right.body)["retCode"] == 0
    assert (
        json.loads(wrong.body)["retCode"] == 10004
    )  # "Error sign": the signature is checked on what arrived
    assert right.limit is not None and right.limit_status is not None and right.limit_reset_ms is not None
    assert 0 <= right.limit_status < right.limit
    assert right.pair == (right.status, right.body)


@pytest.mark.parametrize("flavour", CLIENTS)
def test_the_request_arrives_as_signed(flavour: str, served: Served) -> None:
    server, echo = served
    echo.rest_calls.clear()
    req = request(server.rest_url, CURSOR_QUERY)
    answer = with_client(flavour, server.client_ssl_context(), lambda rest: rest.fetch(req))
    assert answer == (200, BODY)
    ((method, target, headers),) = echo.rest_calls
    assert (method, target) == ("GET", f"/v5/position/list?{CURSOR_QUERY}")  # the query is not re-encoded
    lowered = {k.lower(): v for k, v in headers.items()}
    sent = (lowered["x-bapi-api-key"], lowered["x-bapi-sign"], lowered["x-bapi-timestamp"])
    assert sent == ("key", "abc", "1")
    assert lowered["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("flavour", CLIENTS)
def test_error_statuses_over_plain_http_are_answers_without_limits(flavour: str) -> None:
    echo = EchoExchange(rest_answer=(403, b"<html>403 Forbidden</html>"))
    with ServedExchange(echo, tls=False) as server:
        answer = with_client(
            flavour, ssl.create_default_context(), lambda rest: rest.answer(request(server.rest_url))
        )
    assert answer == RestAnswer(403, b"<html>403 Forbidden</html>")  # and no limit headers: None


@pytest.mark.parametrize("flavour", CLIENTS)
def test_one_client_keeps_its_connection_alive(flavour: str) -> None:
    with serving(KeepAliveServer()) as server, no_leaks():
        req = request(server.url)
        answers = with_client(
            flavour, server.client_context, lambda rest: gather(flavour, rest, [lambda r: r.fetch(req)] * 3)
        )
        assert answers == [(200, BODY)] * 3
        assert (server.connections, len(server.targets)) == (1, 3)


# ------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("flavour", CLIENTS)
def test_an_untrusted_certificate_is_a_transport_failure(flavour: str, served: Served) -> None:
    server, _ = served
    req = request(server.rest_url)
    assert with_client(flavour, ssl.create_default_context(), lambda rest: rest.fetch(req)) == (0, b"")


@pytest.mark.parametrize("flavour", CLIENTS)
def test_a_refused_connection_fails_at_once_not_at_the_timeout(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    req = request(f"http://127.0.0.1:{closed_port()}")
    with caplog.at_level(logging.WARNING, "bybit_hybrid.rest"):
        answer = with_client(
            flavour, ssl.create_default_context(), lambda rest: rest.fetch(req), timeout=60.0
        )
    assert answer == (0, b"")
    # Our own words: a refusal is reported as what it is; had it waited for the 60 s, it would say timed out.
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bybit_hybrid.rest"]
    assert line.startswith("REST GET http://127.0.0.1:") and "timed out" not in line


@pytest.mark.parametrize("flavour", CLIENTS)
def test_a_silent_server_times_out(flavour: str, caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # the kernel accepts; nobody ever answers
        req = request(f"http://127.0.0.1:{listener.getsockname()[1]}")
        with caplog.at_level(logging.WARNING, "bybit_hybrid.rest"):
            answer = with_client(flavour, ssl.create_default_context(), lambda rest: rest.fetch(req, 0.3))
    assert answer == (0, b"")  # a client that ignored its timeout would hang here instead
    assert any("timed out after 0.3 s" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("flavour", CLIENTS)
def test_a_closed_client_answers_failure(flavour: str, served: Served) -> None:
    server, _ = served

    def after_close(rest: Any) -> Any:
        if flavour == "sync":
            rest.close()
            return rest.fetch(request(server.rest_url))

        async def run() -> tuple[int, bytes]:
            await rest.aclose()
            return await rest.fetch(request(server.rest_url))  # type: ignore[no-any-return]

        return run()

    assert with_client(flavour, server.client_ssl_context(), after_close) == (0, b"")


# ---------------------------------------------------------------------------------------------- proxies


@pytest.mark.parametrize("flavour", CLIENTS)
def test_the_environments_proxy_is_honoured_and_no_proxy_bypasses_it(
    flavour: str, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    req, context = request(server.rest_url), server.client_ssl_context()
    with serving(ConnectProxy()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert with_client(flavour, context, lambda rest: rest.fetch(req)) == (200, BODY)
        assert proxy.tunnels == [f"CONNECT 127.0.0.1:{server.port}"]  # TLS to the exchange ran inside
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert with_client(flavour, context, lambda rest: rest.fetch(req)) == (200, BODY)
        monkeypatch.delenv("NO_PROXY")
        assert with_client(flavour, context, lambda rest: rest.fetch(req), trust_env=False) == (200, BODY)
        assert len(proxy.tunnels) == 1  # neither the bypassed request nor trust_env=False went through it


@pytest.mark.parametrize("flavour", CLIENTS)
def test_an_explicit_proxy_argument(flavour: str, served: Served) -> None:
    server, _ = served
    req, context = request(server.rest_url), server.client_ssl_context()
    with serving(ConnectProxy()) as proxy:
        answer = with_client(flavour, context, lambda rest: rest.fetch(req), proxy=proxy.url)
        assert answer == (200, BODY)
        assert proxy.tunnels == [f"CONNECT 127.0.0.1:{server.port}"]


# ----------------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("flavour", CLIENTS)
def test_no_secret_reaches_any_log(flavour: str, served: Served, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG on every logger (httpx's and httpcore's too): a success, a failure and a proxy failure."""
    server, _ = served
    key, signature, password = "very-secret-key", "deadbeefsignature", "proxy-password-xyz"

    def secret(base: str) -> RestRequest:
        return RestRequest(
            id=1, method="GET", url=f"{base}/v5/position/list?category=linear",
            headers=(("X-BAPI-API-KEY", key), ("X-BAPI-SIGN", signature)), category="linear",
        )  # fmt: skip

    context, good = server.client_ssl_context(), secret(server.rest_url)
    refused = secret(f"http://127.0.0.1:{closed_port()}")
    dead_proxy = f"http://user:{password}@127.0.0.1:{closed_port()}"
    with caplog.at_level(logging.DEBUG):
        assert with_client(flavour, context, lambda rest: rest.fetch(good))[0] == 200
        assert with_client(flavour, context, lambda rest: rest.fetch(refused)) == (0, b"")
        assert with_client(flavour, context, lambda rest: rest.fetch(good), proxy=dead_proxy) == (0, b"")
    warnings = [r.getMessage() for r in caplog.records if r.name == "bybit_hybrid.rest"]
    assert len(warnings) == 2 and all(w.startswith("REST GET ") for w in warnings)  # one line per failure
    for text in (caplog.text, *(r.getMessage() for r in caplog.records)):
        assert key not in text and signature not in text and password not in text
    assert key not in repr(secret(server.rest_url))


# ------------------------------------------------------------------- the one-shot calls the adapters use


def run_fetch(flavour: str, req: RestRequest, context: ssl.SSLContext, timeout: float) -> tuple[int, bytes]:
    if flavour == "sync":
        return fetch_sync(req, context, timeout)
    if flavour == "asyncio":
        return asyncio.run(fetch_asyncio(req, context, timeout))
    backend = flavour.split("-")[1]
    return anyio.run(fetch_anyio, req, context, timeout, backend=backend)


FLAVOURS = ["sync", "asyncio", "anyio-asyncio", pytest.param("anyio-trio", marks=TRIO)]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_one_shot_fetch_over_tls_leaves_nothing_open(flavour: str, served: Served) -> None:
    server, echo = served
    echo.rest_calls.clear()
    with no_leaks():
        assert run_fetch(flavour, request(server.rest_url), server.client_ssl_context(), 5.0) == (200, BODY)
    assert len(echo.rest_calls) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_one_shot_fetch_failures(flavour: str) -> None:
    refused = request(f"http://127.0.0.1:{closed_port()}")
    assert run_fetch(flavour, refused, ssl.create_default_context(), 5.0) == (0, b"")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        silent = request(f"http://127.0.0.1:{listener.getsockname()[1]}")
        assert run_fetch(flavour, silent, ssl.create_default_context(), 0.3) == (0, b"")
