"""The threaded adapter, over real TCP + TLS against the served FakeExchange."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from bybit_hybrid import CallbackFailed
from bybit_hybrid.server import ServedExchange
from bybit_hybrid.threaded import HybridStream

from adapter_helpers import no_leaks
from adapter_scenarios import *  # noqa: F403  (the shared scenarios become this module's tests)
from adapter_scenarios import Collector, count, options
from bybit_hybrid_core import Endpoints, Event, HybridCore, Link, LinkUp, LocalProtocolError, TickerUpdate


class ThreadedDriver(Collector):
    def __init__(self, consume: bool = True, **options: Any) -> None:
        super().__init__()
        self.stream = HybridStream(**options).start()
        self._consuming = threading.Event()
        if consume:
            self._consuming.set()
        self._pump = threading.Thread(target=self._consume, name="test-consumer")
        self._pump.start()

    def _consume(self) -> None:
        self._consuming.wait()
        for event in self.stream:
            self.add([event])

    def call(self, fn: Callable[[HybridCore], Any]) -> Any:
        return self.stream.call(fn)

    def command(self, name: str, *args: Any) -> Any:
        return getattr(self.stream, name)(*args)

    def resume(self) -> None:
        self._consuming.set()

    def close(self) -> None:
        self.stream.stop()
        self._consuming.set()
        self._pump.join(5)
        assert not self._pump.is_alive(), "the iterator did not end at stop()"


@pytest.fixture
def make_driver() -> Any:
    return ThreadedDriver


def test_callback_exceptions_are_reported_and_never_fatal(served: ServedExchange) -> None:
    seen = Collector()

    def on_event(event: Event) -> None:
        seen.add([event])
        if isinstance(event, LinkUp):
            raise ValueError("the application's bug")

    with no_leaks():
        with HybridStream(on_event=on_event, **options(served, topics=("tickers.BTCUSDT",))):
            events = seen.wait_for(lambda ev: count(ev, CallbackFailed) >= 2 and count(ev, TickerUpdate) >= 2)
        failures = [e for e in events if isinstance(e, CallbackFailed)]
        assert {e.event for e in failures} == {"LinkUp"} and "the application's bug" in failures[0].error
        assert {e.link for e in failures} == {Link.LINEAR, Link.PRIVATE}


def test_commands_cross_threads_and_misuse_raises_at_the_caller(served: ServedExchange) -> None:
    with no_leaks(), HybridStream(**options(served)) as stream:
        stream.track("SOLUSDT")
        with pytest.raises(LocalProtocolError):
            stream.track("SOLUSDT", category="futures")
        deadline = time.monotonic() + 5
        while "tickers.SOLUSDT" not in served.call(lambda ex: ex.subscriptions("linear")):
            assert time.monotonic() < deadline, "track() did not reach the exchange"
            time.sleep(0.02)
        assert stream.call(lambda core: core.ticker("SOLUSDT")) is not None or stream.next_batch(1.0)


def test_stop_before_start_and_twice_is_harmless() -> None:
    stream = HybridStream(api_key="k", api_secret="s", endpoints=Endpoints.custom("ws://127.0.0.1:9"))
    stream.stop()
    assert stream.next_batch(0.01) == []


def test_calls_after_stop_still_answer(served: ServedExchange) -> None:
    stream = HybridStream(**options(served)).start()
    stream.stop()
    # With the loop gone the call runs here; were it posted to the dead loop it would time out and raise.
    assert stream.call(lambda core: core.status()[Link.PRIVATE].link, timeout=0.01) is Link.PRIVATE


def test_one_read_takes_every_record_the_socket_holds_then_the_end_of_stream() -> None:
    """The threaded transport decrypts through a memory BIO: many TLS records (a venue sends one per message)
    come out of one `read()` as one chunk, and a close without close_notify (Bybit's) is a plain end."""
    import os
    import selectors
    import socket
    import ssl

    import trustme
    from bybit_hybrid._sockets import Dialed, SelectorSocket, _handshake

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    served: list[ssl.SSLSocket] = []
    accept = threading.Thread(
        target=lambda: served.append(server_ctx.wrap_socket(theirs, server_side=True)), daemon=True
    )
    accept.start()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    _handshake(ours, tls, incoming, outgoing)
    accept.join(5)
    ours.setblocking(False)
    selector = selectors.DefaultSelector()
    io = SelectorSocket(selector, Dialed(ours, tls, incoming, outgoing), owner="conn")
    try:
        io.write(b"hello")
        assert served[0].recv(5) == b"hello"
        for i in range(50):
            served[0].sendall(b"message %02d;" % i)  # one record each
        expected = b"".join(b"message %02d;" % i for i in range(50))
        got = b""
        while len(got) < len(expected):  # on loopback they are all there at once, but do not rely on it
            selector.select(5)
            got += b"".join(io.read())
        assert got == expected
        os.close(served[0].detach())  # gone without a close_notify (no SSL_shutdown), as Bybit goes
        chunks: list[bytes] = []
        while not chunks:
            selector.select(5)
            chunks = io.read()
        assert chunks == [b""]
        assert not selector.get_map()  # no longer watched for reads
    finally:
        io.close()
        selector.close()
