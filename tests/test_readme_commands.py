"""The README's quick start: two commands, and the demo one works on a fresh clone in a fresh virtual env.

The demo command installs from the package index, as a newcomer's would. Tests touch no network by default,
so that check runs only when asked:
`BYBIT_HYBRID_INDEX_TESTS=1 python -m pytest tests/test_readme_commands.py`.
The other quick-start command is the one `.ci/run` runs verbatim (tests/test_project.py checks that), so CI
itself proves it on a fresh clone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repo_paths import REPO


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_exactly_two_commands_demo_then_tests() -> None:
    demo, tests = quick_start_commands()
    assert "bybit-hybrid demo" in demo and "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci


@pytest.mark.skipif(
    os.environ.get("BYBIT_HYBRID_INDEX_TESTS") != "1", reason="installs from the package index"
)
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make a fresh clone")
def test_readme_demo_command_runs_in_a_fresh_clone(tmp_path: Path) -> None:
    demo = quick_start_commands()[0]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=60)
    shim = tmp_path / "bin"  # the README says `python3`: make that the interpreter running this suite
    shim.mkdir()
    (shim / "python3").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", demo], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any("position" in line and "BTCUSDT" in line for line in lines), result.stdout[-3000:]
    assert any("LinkUp" in line for line in lines), result.stdout[-3000:]
