"""The stdlib-asyncio adapter, over real TCP + TLS against the served FakeExchange."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from bybit_hybrid.asyncio import HybridStream

from adapter_scenarios import *  # noqa: F403  (the shared scenarios become this module's tests)
from adapter_scenarios import PortalDriver


@pytest.fixture
def make_driver() -> Any:
    return lambda consume=True, **options: PortalDriver(HybridStream, "asyncio", consume, **options)


def test_the_asyncio_adapter_needs_no_anyio() -> None:
    import subprocess

    code = "import sys, bybit_hybrid.asyncio, bybit_hybrid.threaded; print('anyio' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "False\n"
    )
