"""Run the fuzz targets with the `long` hypothesis profile for a fixed wall-clock time.

    python fuzz/run_long.py                 # 20 minutes, every target in fuzz/
    python fuzz/run_long.py --minutes 5 -k orderings

It runs `pytest fuzz/` with HYPOTHESIS_PROFILE=long (100,000 examples per target, far more than fits), stops
it cleanly when the time is up (SIGINT: hypothesis finishes the current example), and stops early on the first
failure (`-x`). Every failing example is saved in `fuzz/failures/` (a hypothesis example database, gitignored)
and is replayed first by the next run of the same target, also under the `ci` profile, until it passes.
The exit code is pytest's: 0 when nothing failed (including "interrupted because the time was up").
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget (default 20)")
    parser.add_argument("-k", default="", help="pytest -k expression to pick targets (e.g. 'orderings')")
    args = parser.parse_args(argv)
    env = {**os.environ, "HYPOTHESIS_PROFILE": "long"}
    env.pop("CI", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(FUZZ),
        "-x",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
    ]
    if args.k:
        command += ["-k", args.k]
    print(f"fuzzing for {args.minutes:g} min: {' '.join(command)}", flush=True)
    proc = subprocess.Popen(command, cwd=FUZZ.parent, env=env)
    try:
        code = proc.wait(timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # pytest reports what ran; hypothesis keeps what it found
        try:
            code = proc.wait(timeout=300)  # a failure being shrunk may take a while to report
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code == 2:  # pytest's "interrupted": the time was up, nothing failed
            code = 0
    print(f"failing examples (if any) are in {FUZZ / 'failures'}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
