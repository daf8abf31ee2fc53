"""Test configuration for tests/ and fuzz/: hypothesis profiles and the real Bybit samples.

The only conftest.py in the repository, so `tests/` and `fuzz/` never shadow each other's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))  # `from repo_paths import ...`, helpers

from repo_paths import SAMPLES

# CI gets bounded, derandomized runs with no deadline so timing noise never fails a build;
# `HYPOTHESIS_PROFILE=long` is for soak runs by hand (see docs/testing.md).
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
settings.register_profile(
    "long",
    max_examples=100_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(
            f"Bybit samples not found at {SAMPLES}: "
            "check out ../shared beside the repo or set BYBIT_SAMPLES_DIR"
        )
    return SAMPLES
