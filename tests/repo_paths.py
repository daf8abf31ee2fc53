"""Where the repository and the real Bybit samples are (imported by tests as `from repo_paths import ...`).

Not in a conftest.py on purpose: `tests/` and `fuzz/` would then both own a module named `conftest`.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("BYBIT_SAMPLES_DIR", REPO.parent / "shared" / "bybit-v5-samples"))
