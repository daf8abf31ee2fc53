"""`wait_live(timeout=...)` on every adapter flavour, over real TCP (+ TLS) on 127.0.0.1: it returns once
every link is LIVE and positions are synced, or raises `StartupFailed` naming what the core saw. Timeouts
here are hang guards (what fails fast must not need them), except the one case that is about the timeout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from bybit_hybrid import HybridStream as AnyioStream
from bybit_hybrid import StartupFailed
from bybit_hybrid.asyncio import HybridStream as AsyncioStream
from bybit_hybrid.server import ServedExchange
from bybit_hybrid.threaded import HybridStream as ThreadedStream

from adapter_helpers import TRIO_SKIP, TRIO_WORKS, no_leaks
from adapter_scenarios import options
from bybit_hybrid_core import Endpoints, Link, LinkStatus

GUARD = 10.0  # longer than any fail-fast path takes; only a hang would reach it
FLAVOURS = [
    "anyio-asyncio",
    pytest.param("anyio-trio", marks=pytest.mark.skipif(not TRIO_WORKS, reason=TRIO_SKIP)),
    "asyncio",
    "threaded",
]


def wait_live(flavour: str, timeout: float, **opts: Any) -> dict[Link, LinkStatus]:
    """Start a stream of `flavour`, `wait_live(timeout)`, and return `core.status()` right after."""
    if flavour == "threaded":
        with ThreadedStream(**opts) as stream:
            stream.wait_live(timeout)
            status: dict[Link, LinkStatus] = stream.call(lambda core: core.status())
            return status

    cls = AsyncioStream if flavour == "asyncio" else AnyioStream

    async def main() -> dict[Link, LinkStatus]:
        async with cls(**opts) as stream:
            await stream.wait_live(timeout)
            return stream.core.status()

    if flavour == "asyncio":
        return asyncio.run(main())
    return anyio.run(main, backend=flavour.removeprefix("anyio-"))


def failure(flavour: str, timeout: float, **opts: Any) -> StartupFailed:
    with no_leaks(), pytest.raises(StartupFailed) as caught:
        wait_live(flavour, timeout, **opts)
    return caught.value


@pytest.fixture(scope="module")
def served() -> Iterator[ServedExchange]:
    with ServedExchange(tls=True) as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_returns_once_every_link_is_live_and_positions_are_synced(
    flavour: str, served: ServedExchange
) -> None:
    served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
    try:
        with no_leaks():
            status = wait_live(flavour, GUARD, **options(served))
    finally:
        served.call(lambda ex: ex.close_position("BTCUSDT"))
    assert set(status) == {Link.LINEAR, Link.PRIVATE}
    assert all(s.state == "LIVE" for s in status.values()), status
    assert status[Link.PRIVATE].authenticated and "position" in status[Link.PRIVATE].subscriptions


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_connection_refused(flavour: str, closed_port: int) -> None:
    error = failure(flavour, GUARD, endpoints=Endpoints.custom(f"ws://127.0.0.1:{closed_port}"))
    assert error.kind == "refused" and error.link is Link.LINEAR
    assert f"connection refused by 127.0.0.1:{closed_port}" in str(error)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_geo_block_403(flavour: str) -> None:
    with ServedExchange(tls=True) as served:
        served.call(lambda ex: ex.geo_block())
        error = failure(flavour, GUARD, **options(served))
    assert error.kind == "geo_block"
    assert "HTTP 403" in error.message and "geo-block" in error.message and "region" in error.hint


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_refused_auth_names_the_hint_and_never_the_secret(flavour: str, served: ServedExchange) -> None:
    wrong = "wrong-secret-never-shown"
    error = failure(flavour, GUARD, **options(served, api_secret=wrong))
    assert error.kind == "auth" and error.link is Link.PRIVATE
    assert "refused the API key" in str(error) and "Params Error" in str(error) and "clock" in error.hint
    assert wrong not in str(error) + repr(error)


@pytest.mark.parametrize("flavour", ["asyncio", "threaded"])
def test_untrusted_tls_certificate(flavour: str, served: ServedExchange) -> None:
    error = failure(flavour, GUARD, **options(served, cafile=None))
    assert error.kind == "certificate" and "TLS certificate of 127.0.0.1" in str(error)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_times_out_with_the_links_states(flavour: str) -> None:
    """A server that takes the TCP connection and never answers the upgrade: nothing fatal happens, so the
    user's timeout ends the wait (shorter than the core's handshake timeout, which would be a failure)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        error = failure(flavour, 0.3, endpoints=Endpoints.custom(f"ws://127.0.0.1:{port}"))
    assert error.kind == "timed_out" and "timed out after 0.3 s" in str(error)
    assert error.states == {"linear": "HANDSHAKING"} and "linear HANDSHAKING" in str(error)


def test_a_later_wait_waits_for_news_and_succeeds_once_the_server_is_back(closed_port: int) -> None:
    """The stream keeps trying after a failed wait; a later wait_live is failed only by news, not by the
    refusal already reported, so a retry loop ends once the server is back."""
    with no_leaks(), ServedExchange(tls=False, port=closed_port) as served:  # revive() opens a new listener
        served.kill()  # nothing listens on the port until revive()
        with ThreadedStream(**options(served, cafile=None)) as stream:
            with pytest.raises(StartupFailed) as caught:
                stream.wait_live(GUARD)
            assert caught.value.kind == "refused"
            served.revive()
            for _ in range(20):  # a retry loop: a dial already under way may still be refused once
                try:
                    stream.wait_live(GUARD)
                    break
                except StartupFailed as again:
                    assert again.kind == "refused"
            assert all(s.state == "LIVE" for s in stream.call(lambda core: core.status()).values())


def test_wait_live_needs_a_started_stream() -> None:
    with pytest.raises(RuntimeError, match="start"):
        ThreadedStream().wait_live(0.1)
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(AsyncioStream().wait_live(0.1))
