"""The REST fetcher behind FetchPositions: anyio (asyncio, trio), stdlib asyncio and blocking flavours."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator

import anyio
import pytest
from bybit_hybrid.rest import fetch_anyio, fetch_asyncio, fetch_sync
from bybit_hybrid.server import ServedExchange

from adapter_helpers import TRIO_SKIP, TRIO_WORKS, EchoExchange, no_leaks
from bybit_hybrid_core._events import RestRequest

HEADERS = (("X-BAPI-API-KEY", "key"), ("X-BAPI-SIGN", "abc"), ("X-BAPI-TIMESTAMP", "1"))
BODY = b'{"retCode":0,"retMsg":"OK","result":{"list":[]}}' * 200  # big enough for several reads


def request(base: str, query: str = "category=linear&settleCoin=USDT&limit=200") -> RestRequest:
    return RestRequest(
        id=1, method="GET", url=f"{base}/v5/position/list?{query}", headers=HEADERS, category="linear"
    )


def run_fetch(flavour: str, req: RestRequest, context: ssl.SSLContext, timeout: float) -> tuple[int, bytes]:
    if flavour == "sync":
        return fetch_sync(req, context, timeout)
    if flavour == "asyncio":
        return asyncio.run(fetch_asyncio(req, context, timeout))
    backend = flavour.split("-")[1]
    return anyio.run(fetch_anyio, req, context, timeout, backend=backend)


FLAVOURS = [
    "sync",
    "asyncio",
    "anyio-asyncio",
    pytest.param("anyio-trio", marks=pytest.mark.skipif(not TRIO_WORKS, reason=TRIO_SKIP)),
]


Served = tuple[ServedExchange, EchoExchange]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    exchange = EchoExchange(rest_answer=(200, BODY))
    with ServedExchange(exchange, tls=True) as server:
        yield server, exchange


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fetch_over_tls_returns_status_and_body(flavour: str, served: Served) -> None:
    server, exchange = served
    exchange.rest_calls.clear()
    with no_leaks():
        status, body = run_fetch(flavour, request(server.rest_url), server.client_ssl_context(), 5.0)
    assert (status, body) == (200, BODY)
    ((method, target, headers),) = exchange.rest_calls
    assert (method, target) == ("GET", "/v5/position/list?category=linear&settleCoin=USDT&limit=200")
    assert {k.lower(): v for k, v in headers.items()}["x-bapi-sign"] == "abc"
    assert headers.get("Host") == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fetch_over_plain_http_and_error_statuses(flavour: str) -> None:
    exchange = EchoExchange(rest_answer=(403, b"<html>403 Forbidden</html>"))
    with ServedExchange(exchange, tls=False) as server:
        assert run_fetch(flavour, request(server.rest_url), ssl.create_default_context(), 5.0) == (
            403,
            b"<html>403 Forbidden</html>",
        )


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_untrusted_certificate_is_a_transport_failure(flavour: str, served: Served) -> None:
    server, _ = served
    assert run_fetch(flavour, request(server.rest_url), ssl.create_default_context(), 5.0) == (0, b"")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_refused_connection_is_a_transport_failure(flavour: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    answer = run_fetch(flavour, request(f"http://127.0.0.1:{port}"), ssl.create_default_context(), 5.0)
    assert answer == (0, b"")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_silent_server_times_out(flavour: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        # (0, b"") is the timed-out answer; a fetch that ignored its timeout would hang here instead.
        answer = run_fetch(flavour, request(f"http://127.0.0.1:{port}"), ssl.create_default_context(), 0.3)
        assert answer == (0, b"")


def test_the_secret_headers_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    secret: Callable[[], RestRequest] = lambda: RestRequest(  # noqa: E731
        id=1, method="GET", url="http://127.0.0.1:1/v5/position/list?category=linear",
        headers=(("X-BAPI-API-KEY", "very-secret-key"), ("X-BAPI-SIGN", "deadbeefsignature")),
        category="linear",
    )  # fmt: skip
    with caplog.at_level("DEBUG"):
        assert fetch_sync(secret(), ssl.create_default_context(), 1.0) == (0, b"")
    assert "REST GET" in caplog.text
    assert "very-secret-key" not in caplog.text and "deadbeefsignature" not in caplog.text
    assert "very-secret-key" not in repr(secret())
