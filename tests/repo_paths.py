"""Where the repository and the real Bybit samples are (imported by tests as `from repo_paths import ...`).

The samples are a copy of `shared/bybit-v5-samples/` kept in the repository (`tests/samples/bybit-v5/`), so a
fresh clone tests on its own; `test_samples_copy.py` fails when the copy and the shared folder drift apart.
`BYBIT_SAMPLES_DIR` points the tests at another folder.

Not in a conftest.py on purpose: `tests/` and `fuzz/` would then both own a module named `conftest`.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("BYBIT_SAMPLES_DIR", REPO / "tests" / "samples" / "bybit-v5"))
SHARED_SAMPLES = REPO.parent / "shared" / "bybit-v5-samples"  # the source of the copy, when it is beside us
