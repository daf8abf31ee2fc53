"""The served exchange's socket plumbing, with a stand-in exchange: upgrade routing, REST, TLS, faults."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from bybit_hybrid.server import ServedExchange

from adapter_helpers import EchoExchange, Send, no_leaks

UPGRADE = b"GET /v5/public/linear HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def connect(served: ServedExchange) -> socket.socket:
    sock = socket.create_connection((served.host, served.port), timeout=5)
    if served.tls:
        sock = served.client_ssl_context().wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def read_until(sock: socket.socket, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_websocket_upgrades_go_to_the_exchange_and_back(tls: bool) -> None:
    exchange = EchoExchange()
    with no_leaks(), ServedExchange(exchange, tls=tls) as served:
        assert served.ws_url.startswith("wss://" if tls else "ws://")
        with connect(served) as sock:
            sock.sendall(UPGRADE)
            assert read_until(sock, b"\r\n\r\n").startswith(b"GET /v5/public/linear")
            sock.sendall(b"hello")
            assert read_until(sock, b"hello").endswith(b"hello")
            assert served.connections == 1 and served.accepted == 1
            sock.sendall(b"quit")  # the exchange closes the socket
            assert read_until(sock, b"never") == b""
        wait_for(lambda: served.connections == 0)
        assert exchange.gone == []  # closed by the exchange itself: no "disconnected" report


def test_a_client_hanging_up_is_reported_as_disconnected() -> None:
    exchange = EchoExchange()
    with ServedExchange(exchange, tls=False) as served:
        with connect(served) as sock:
            sock.sendall(UPGRADE)
            read_until(sock, b"\r\n\r\n")
        wait_for(lambda: exchange.received.get(1, b"").endswith(b"\r\n\r\n") and served.connections == 0)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_rest_requests_get_the_exchange_answer(tls: bool) -> None:
    exchange = EchoExchange(rest_answer=(401, b'{"retCode":10003}'))
    with ServedExchange(exchange, tls=tls) as served, connect(served) as sock:
        sock.sendall(
            b"GET /v5/position/list?category=linear HTTP/1.1\r\nHost: x\r\nX-BAPI-API-KEY: k\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = read_until(sock, b"never")  # the client said close: the server closes after answering
        assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
        assert b"\r\nConnection: close\r\n" in answer
        assert answer.endswith(b'\r\n\r\n{"retCode":10003}')
        assert exchange.rest_calls == [
            (
                "GET", "/v5/position/list?category=linear",
                {"Host": "x", "X-BAPI-API-KEY": "k", "Connection": "close"},
            )
        ]  # fmt: skip
        assert served.rest_requests == 1
        assert served.rest_log == [("GET", "/v5/position/list")]


def read_answer(sock: socket.socket, pending: bytes = b"") -> tuple[bytes, bytes]:
    """One HTTP answer read to its Content-Length, and whatever came after it."""
    data = read_until(sock, b"\r\n\r\n") if b"\r\n\r\n" not in pending else pending
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                 .split(b":")[1])  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed before the body ended"
        body += chunk
    return head + b"\r\n\r\n" + body[:length], body[length:]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_rest_connections_are_kept_alive_for_the_next_request(tls: bool) -> None:
    exchange = EchoExchange(rest_answer=(200, b'{"retCode":0}'))
    get = b"GET /v5/market/time HTTP/1.1\r\nHost: x\r\n\r\n"
    with no_leaks(), ServedExchange(exchange, tls=tls) as served:
        with connect(served) as sock:
            sock.sendall(get)
            first, rest = read_answer(sock)
            assert b"\r\nConnection: keep-alive\r\n" in first and first.endswith(b'{"retCode":0}')
            sock.sendall(get + get)  # pipelined: both in one write, answered in order
            second, rest = read_answer(sock, rest)
            third, rest = read_answer(sock, rest)
            assert second == third == first and rest == b""
            assert (served.rest_requests, served.tcp_connections) == (3, 1)
            assert served.rest_log == [("GET", "/v5/market/time")] * 3
        wait_for(lambda: exchange.gone == [] and not served._handlers)  # the client's close ends it


def test_an_http_1_0_request_is_answered_and_closed() -> None:
    with ServedExchange(EchoExchange(), tls=False) as served, connect(served) as sock:
        sock.sendall(b"GET /v5/market/time HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = read_until(sock, b"never")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in answer


def test_kill_and_revive_keep_the_port() -> None:
    exchange = EchoExchange()
    with ServedExchange(exchange, tls=False) as served:
        sock = connect(served)
        sock.sendall(UPGRADE)
        read_until(sock, b"\r\n\r\n")
        port = served.port
        served.kill()
        with pytest.raises(OSError):
            sock.sendall(b"x" * 100_000)
            assert sock.recv(10) == b""
            raise ConnectionResetError
        sock.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        wait_for(lambda: exchange.gone == [1])
        served.revive()
        assert served.port == port
        with connect(served) as again:
            again.sendall(UPGRADE)
            assert read_until(again, b"\r\n\r\n").startswith(b"GET")


def test_freeze_makes_current_connections_silent_both_ways() -> None:
    exchange = EchoExchange()
    with ServedExchange(exchange, tls=False) as served, connect(served) as sock:
        sock.sendall(UPGRADE)
        read_until(sock, b"\r\n\r\n")
        assert served.freeze() == 1
        sock.sendall(b"ping")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        assert exchange.received[1] == UPGRADE  # nothing reached the exchange either
        with connect(served) as fresh:  # a new connection is healthy
            fresh.sendall(UPGRADE)
            assert read_until(fresh, b"\r\n\r\n").startswith(b"GET")


def test_call_runs_on_the_server_thread_and_flushes_what_it_caused() -> None:
    def push(ex: EchoExchange) -> str:
        ex.out.append(Send(1, b"pushed"))
        return threading.current_thread().name

    with ServedExchange(EchoExchange(), tls=False) as served, connect(served) as sock:
        sock.sendall(UPGRADE)
        read_until(sock, b"\r\n\r\n")
        assert served.call(push) == "served-exchange"
        assert read_until(sock, b"pushed").endswith(b"pushed")


def test_tls_clients_must_trust_the_ca() -> None:
    with ServedExchange(EchoExchange(), tls=True) as served:
        assert served.ca_file is not None
        assert Path(served.ca_file).read_text().startswith("-----BEGIN CERTIFICATE")
        raw = socket.create_connection((served.host, served.port), timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        raw.close()
    assert served.ca_file is not None
    assert not os.path.exists(served.ca_file)  # removed at stop
