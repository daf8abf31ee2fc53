"""The FakeExchange served over real sockets: signed REST, WebSocket routing by path, the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from bybit_hybrid.rest import fetch_sync
from bybit_hybrid.server import ServedExchange
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from bybit_hybrid_core._config import Credentials
from bybit_hybrid_core._plane.rest import build_request


def signed(served: ServedExchange, secret: str) -> tuple[int, bytes]:
    action = build_request(
        request_id=1, rest_base=served.rest_url, credentials=Credentials(served.api_key, secret),
        wall_ms=time.time_ns() // 1_000_000, recv_window_ms=5000, category="linear", settle_coin="USDT",
    )  # fmt: skip
    return fetch_sync(action.request, served.client_ssl_context(), 5.0)


def test_signed_position_list_over_https() -> None:
    with ServedExchange(tls=True) as served:
        served.call(lambda ex: ex.open_position("ETHUSDT", "Sell", "3"))
        status, body = signed(served, served.api_secret)
        answer = json.loads(body)
        assert (status, answer["retCode"]) == (200, 0)
        rows = answer["result"]["list"]
        assert [(r["symbol"], r["side"], Decimal(r["size"])) for r in rows] == [("ETHUSDT", "Sell", 3)]
        status, body = signed(served, "not-the-secret")
        assert json.loads(body)["retCode"] == 10004  # Bybit's "Error sign"
        assert served.rest_requests == 2


def test_websocket_paths_reach_the_exchange() -> None:
    upgrade = (
        b"GET /v5/public/linear HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with ServedExchange(tls=False) as served, socket.create_connection((served.host, served.port), 5) as sock:
        sock.sendall(upgrade)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        deadline = time.monotonic() + 2
        while served.call(lambda ex: ex.connections("linear")) == [] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(served.call(lambda ex: ex.connections("linear"))) == 1


def test_the_command_line_prints_what_clients_need() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bybit_hybrid.server", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    text = "".join(lines)
    assert "websocket: wss://127.0.0.1:" in text and "rest:      https://127.0.0.1:" in text
    ca = next(line for line in lines if line.startswith("CA file:")).split()[2]
    assert ca.endswith("ca.pem")


def test_start_twice_and_calls_when_stopped_are_refused() -> None:
    served = ServedExchange(tls=False)
    with pytest.raises(RuntimeError, match="not started"):
        served.call(lambda ex: None)
    with served:
        with pytest.raises(RuntimeError, match="already started"):
            served.start()
        assert repr(served).startswith("ServedExchange(ws://127.0.0.1:")


# ------------------------------------------------------------------------------------------ the clock


def ticker_lags(served: ServedExchange, n: int = 5) -> list[float]:
    """For `n` ticker deltas read from a real socket on 127.0.0.1: our wall clock right after the read minus
    the message's `ts`, in ms (positive: the message is from the past, as it must be)."""
    ws = WSConnection(ConnectionType.CLIENT)
    lags: list[float] = []
    with socket.create_connection((served.host, served.port), 5) as sock:
        sock.sendall(ws.send(Request(host="127.0.0.1", target="/v5/public/linear")))
        subscribed = False
        while len(lags) < n:
            data = sock.recv(65536)
            received_ms = time.time() * 1000  # right after the read: what the message is compared with
            assert data, "the served exchange closed the connection"
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection) and not subscribed:
                    subscribed = True
                    request = {"op": "subscribe", "args": ["tickers.BTCUSDT"]}
                    sock.sendall(ws.send(TextMessage(data=json.dumps(request))))
                elif isinstance(event, TextMessage):
                    message = json.loads(event.data)
                    if message.get("type") == "delta":  # a snapshot's ts is its quote's, maybe older
                        lags.append(received_ms - message["ts"])
    return lags


def test_the_served_exchange_tells_the_time_in_its_messages() -> None:
    # A correctness bound on a clock (it ran 145 ms fast when its wall start was read after a slow
    # import), not a speed assertion: generous on purpose.
    with ServedExchange(tls=False) as served:
        lags = ticker_lags(served)
        assert all(-50 < lag < 50 for lag in lags), lags
        served.call(lambda ex: ex.clock_skew(2000))
        skewed = ticker_lags(served)
        assert all(-50 < lag + 2000 < 50 for lag in skewed), skewed
