"""`bench/bench_core.py --quick` still runs and prints its table (a benchmark that cannot rot unnoticed).

How long it takes is not asserted: speed lives in bench/, and a loaded CI machine is no yardstick.
"""

from __future__ import annotations

import re
import subprocess
import sys

from repo_paths import REPO


def test_bench_core_quick_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_core.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "300 messages" in lines[0] and "process CPU time" in lines[0]
    assert lines[1].split()[:4] == ["msgs", "ev/msg", "|", "core"]
    number = r"\d+\.\d\d"
    for label in ("ticker", "book", "trade", "all", "all, 1/read"):
        row = next(line for line in lines if line.startswith(f"{label} "))
        # msgs, events per message, then µs and msg/s for the core, then µs and a ratio per peer
        assert re.search(
            rf"\d+ +{number} \| +{number} +[\d,]+ \|( +{number} +{number}x \|){{3}} +{number}$", row
        ), row
    assert any(line.startswith("events (all):") and "PositionUpdate" in line for line in lines)
