"""The anyio adapter on asyncio and trio, over real TCP + TLS against the served FakeExchange."""

from __future__ import annotations

from typing import Any

import pytest
from bybit_hybrid import HybridStream

from adapter_helpers import TRIO_SKIP, TRIO_WORKS
from adapter_scenarios import *  # noqa: F403  (the shared scenarios become this module's tests)
from adapter_scenarios import PortalDriver


@pytest.fixture(
    params=["asyncio", pytest.param("trio", marks=pytest.mark.skipif(not TRIO_WORKS, reason=TRIO_SKIP))]
)
def make_driver(request: pytest.FixtureRequest) -> Any:
    return lambda consume=True, **options: PortalDriver(HybridStream, request.param, consume, **options)
