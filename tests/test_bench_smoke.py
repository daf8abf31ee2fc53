"""`bench/bench_core.py --quick` and a tiny `bench/bench_e2e.py` still run and print their tables (benchmarks
that cannot rot unnoticed).

How long it takes is not asserted: speed lives in bench/, and a loaded CI machine is no yardstick.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from repo_paths import REPO


def bench_lines(script: str, *args: str) -> list[str]:
    """What `bench/<script> <args>` printed, line by line; it must exit 0."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_bench_core_quick_prints_the_table() -> None:
    lines = bench_lines("bench_core.py", "--quick")
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


def test_bench_e2e_tiny_run_prints_its_tables(tmp_path: Path) -> None:
    """`bench/bench_e2e.py` end to end over TLS on 127.0.0.1: our three adapters and the do-nothing client,
    300 messages, one round in each framing (the peers are left out: they are an extra, not the suite's)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_e2e.py"), "--only", "anyio,asyncio,threaded,floor",
         "-n", "300", "--rounds", "1", "--warmup", "0", "--scratch", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "stream: 200 symbols, 600 topics; 300 messages per run" in out, out
    assert "note:" not in out, out  # every contender saw every message as one event
    number = r"\d+\.\d\d"
    for mode in ("permsg", "blast"):
        table = out.split(f"### {mode}: client CPU µs per message", 1)[1].split("\n\n", 2)[1]
        rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
        assert rows[0].split(" | ")[:2] == ["| contender", "µs/msg"], table
        labels = [row.split(" | ")[0][2:] for row in rows[1:]]
        assert labels == [
            "bybit_hybrid.HybridStream (anyio)",
            "bybit_hybrid.asyncio.HybridStream",
            "bybit_hybrid.threaded.HybridStream",
            "floor: do-nothing client",
        ], table
        for row in rows[1:]:
            assert re.search(rf"\| {number} \| [\d,]+ \| {number}-{number} \| {number} \|$", row), row


def test_bench_stages_prints_each_stage_and_the_yardstick() -> None:
    lines = bench_lines("bench_stages.py", "--messages", "300", "--repeat", "1")
    assert lines[0].startswith("300 topic messages"), lines
    number = r"-?\d+\.\d\d"
    labels = ["frame reader", "+ decode", "+ the link", "+ the core"]
    for label, line in zip(labels, lines[1:5], strict=True):
        assert line.startswith(label) and re.search(rf"{number}  \(this stage +{number}\)$", line), line
    assert lines[5].startswith("bare json.loads") and re.search(rf"{number}$", lines[5]), lines[5]
