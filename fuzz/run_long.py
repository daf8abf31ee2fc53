"""Run the fuzz targets with the `long` hypothesis profile for a fixed wall-clock time.

    python fuzz/run_long.py                 # 20 minutes, shared by every target in fuzz/
    python fuzz/run_long.py --minutes 5 -k orderings

Each target file (`fuzz/test_fuzz_*.py`) gets its share of the time: `pytest <file>` runs with
HYPOTHESIS_PROFILE=long (100,000 examples, far more than fits) and is stopped cleanly when its share is up
(SIGINT: hypothesis finishes the current example). The run stops at the first failure. Every failing example
is saved in `fuzz/failures/` (a hypothesis example database, gitignored) and is replayed first by the next run
of the same target, also under the `ci` profile, until it passes. The exit code is 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
# The state machine explores far more ground per minute of fuzzing than the byte-level target needs.
SHARE = {"test_fuzz_orderings.py": 3.0}
GRACE = 60  # seconds for pytest to report after SIGINT


def run_target(target: Path, seconds: float, k: str) -> int:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "long"}
    env.pop("CI", None)
    command = [sys.executable, "-m", "pytest", str(target), "-x", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics"]  # fmt: skip
    if k:
        command += ["-k", k]
    print(f"fuzzing {target.name} for {seconds / 60:.1f} min", flush=True)
    saved = _saved_examples()
    proc = subprocess.Popen(command, cwd=FUZZ.parent, env=env)
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # pytest reports what ran; hypothesis keeps what it found
        try:
            code = proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()  # hypothesis does not always stop on SIGINT; what it found is in the database
            proc.wait()
            code = 1 if _saved_examples() - saved else 2
        return 0 if code == 2 else code  # 2: pytest was interrupted because the time was up


def _saved_examples() -> set[Path]:
    return set((FUZZ / "failures").rglob("*")) if (FUZZ / "failures").is_dir() else set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget in all (default 20)")
    parser.add_argument("-k", default="", help="pytest -k expression to pick tests (e.g. 'orderings')")
    args = parser.parse_args(argv)
    targets = sorted(FUZZ.glob("test_fuzz_*.py"))
    if args.k:
        targets = [t for t in targets if _selects(t, args.k)]
    weights = [SHARE.get(t.name, 1.0) for t in targets]
    code = 0
    for target, weight in zip(targets, weights, strict=True):
        code = run_target(target, args.minutes * 60 * weight / sum(weights), args.k)
        if code not in (0, 5):  # 5: -k selected nothing in this file
            break
        code = 0
    print(f"failing examples (if any) are in {FUZZ / 'failures'}", flush=True)
    return code


def _selects(target: Path, k: str) -> bool:
    """Whether `pytest -k k` collects anything from `target` (cheap: a collection-only run)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(target),
        "--collect-only",
        "-q",
        "-k",
        k,
        "-p",
        "no:cacheprovider",
    ]
    probe = subprocess.run(command, cwd=FUZZ.parent, capture_output=True, text=True, check=False)
    return probe.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
