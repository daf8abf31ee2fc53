"""The anyio adapter on asyncio and trio, over real TCP + TLS against the served FakeExchange."""

from __future__ import annotations

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
