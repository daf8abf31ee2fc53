"""The docs' code runs: every ```python block in README.md and docs/*.md is executed.

Blocks of one file share a namespace and run in order, so a page can build an example step by step. A block
fenced as ```python no-run is shown but not executed (it needs real Bybit keys or network); say why
next to it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repo_paths import REPO

FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])


def python_blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m["body"])
        for m in FENCE.finditer(text)
        if m["info"].strip() == "python"
    ]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_code_runs(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for line, body in python_blocks(page):
        code = compile(body, f"{page.name}:{line}", "exec")
        exec(code, namespace)


def test_state_diagram_is_current() -> None:
    import importlib.util

    path = REPO / "docs" / "make_state_diagram.py"
    spec = importlib.util.spec_from_file_location("make_state_diagram", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (REPO / "docs" / "architecture.md").read_text()
    assert module.BEGIN in page, "docs/architecture.md lost its state-diagram markers"
    assert module.render(page) == page, "run: python docs/make_state_diagram.py --write"
