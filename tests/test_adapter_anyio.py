"""The anyio adapter on asyncio and trio, over real TCP + TLS against the served FakeExchange."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest
from bybit_hybrid import HybridStream
from bybit_hybrid.server import ServedExchange

from adapter_helpers import TRIO_SKIP, TRIO_WORKS
from adapter_scenarios import *  # noqa: F403  (the shared scenarios become this module's tests)
from adapter_scenarios import PortalDriver, options


@pytest.fixture(
    params=["asyncio", pytest.param("trio", marks=pytest.mark.skipif(not TRIO_WORKS, reason=TRIO_SKIP))]
)
def make_driver(request: pytest.FixtureRequest) -> Any:
    return lambda consume=True, **options: PortalDriver(HybridStream, request.param, consume, **options)


@pytest.fixture(
    params=["asyncio", pytest.param("trio", marks=pytest.mark.skipif(not TRIO_WORKS, reason=TRIO_SKIP))]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_errors_in_the_body_propagate_unwrapped_and_cancellation_is_clean(
    served: ServedExchange,
) -> None:
    opts = options(served)
    tasks_before = len(anyio.get_running_tasks())
    with pytest.raises(ValueError, match="the application's"):
        async with HybridStream(**opts) as stream:
            await stream.next_batch()
            raise ValueError("the application's")  # not an ExceptionGroup from the adapter's task group
    with anyio.move_on_after(0.5) as scope:
        async with HybridStream(**opts) as stream:
            async for _ in stream:
                pass
    assert scope.cancelled_caught
    assert await stream.next_batch() == []  # closed: iteration ends
    assert len(anyio.get_running_tasks()) == tasks_before


def _tls_pair() -> tuple[Any, Any, Any, Any]:
    """A client and a server `SSLObject` over memory BIOs, handshake done: (client, its incoming BIO,
    server, its outgoing BIO)."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()
    return client, c_in, server, s_out


def test_a_read_takes_every_whole_record_in_hand_and_maps_the_end_of_stream() -> None:
    """anyio's TLSStream hands back one record per receive(); `_drain` takes the rest of what one socket read
    brought, and sorts what ended it: nothing (half a record), a close_notify or a TLS error."""
    import ssl

    from bybit_hybrid._anyio import _drain

    client, c_in, server, s_out = _tls_pair()
    for i in range(3):
        server.write(b"message %d;" % i)  # one TLS record each, as a venue sends them
    wire = s_out.read()
    server.write(b"half")
    half = s_out.read()
    c_in.write(wire + half[: len(half) // 2])
    first = client.read(65536)
    data, failure = _drain(client, first)
    assert (data, failure) == (b"message 0;message 1;message 2;", None)
    c_in.write(half[len(half) // 2 :])
    with contextlib.suppress(ssl.SSLWantReadError):
        server.unwrap()
    c_in.write(s_out.read())  # the close_notify right behind the record
    data, failure = _drain(client, client.read(65536))
    assert data == b"half" and isinstance(failure, anyio.EndOfStream)

    client, c_in, server, s_out = _tls_pair()
    server.write(b"good")
    record = s_out.read()
    server.write(b"bad")
    bad = bytearray(s_out.read())
    bad[-1] ^= 1  # a broken MAC
    c_in.write(record + bytes(bad))
    data, failure = _drain(client, client.read(65536))
    assert data == b"good" and isinstance(failure, ssl.SSLError)
