"""The project's own promises: CI runs the README's command, the core stays sans-IO."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from repo_paths import REPO

BANNED = {
    "socket", "ssl", "asyncio", "anyio", "trio", "threading", "selectors", "time", "http.client",
    "urllib.request", "httpx", "requests", "aiohttp", "subprocess", "random", "os", "uuid", "secrets",
}  # fmt: skip
# `random` is banned as a *module import*: the core takes `random.Random` only through its own seeded
# instance, imported as `from random import Random`, which the check below allows explicitly.
ALLOWED_FROM = {("random", "Random")}


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    test_cmds = [line for b in blocks for line in b.splitlines() if "pytest" in line]
    assert test_cmds, "README must show the test command in a ```bash block"
    ci = (REPO / ".ci" / "run").read_text()
    assert test_cmds[0].strip() in ci.splitlines()


def test_core_imports_no_io() -> None:
    offenders = []
    for path in sorted((REPO / "src" / "bybit_hybrid_core").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, name in names:
                if (module, name) in ALLOWED_FROM:
                    continue
                if module in BANNED or module.split(".")[0] in BANNED - {"http", "urllib"}:
                    offenders.append(f"{path.name}:{node.lineno} {module}")
    assert not offenders, offenders


# ------------------------------------------------------------------------------------------ the layers
# docs/architecture.md "The tree": one folder per vocabulary, one face each. Three rules, checked on the
# source as written (ast), so a violation fails here before it confuses a reader.

SRC = REPO / "src"
ROOTS = {"bybit_hybrid_core": SRC / "bybit_hybrid_core", "bybit_hybrid": SRC / "adapters"}
PUBLIC_CORE = {"bybit_hybrid_core", "bybit_hybrid_core.testing", "bybit_hybrid_core.codec"}


def _modules() -> dict[str, Path]:
    found = {}
    for name, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = [name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _package(module: str) -> str:
    return module if module in PACKAGES else module.rpartition(".")[0]


def _imports(tree: ast.AST, importer: str | None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of our packages; `from pkg import mod` names the module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert importer is not None
                base = _package(importer).split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            out += [(node.lineno, t) for t in subs] or [(node.lineno, target)]
    return [(line, t) for line, t in out if t.split(".")[0] in ROOTS]


def _code_of(path: Path) -> list[tuple[str, str]]:
    """(where, source) of a Python file, or of every ```python block of a markdown page."""
    text = path.read_text()
    if path.suffix == ".py":
        return [(str(path.relative_to(REPO)), text)]
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", text, re.S)
    return [(f"{path.relative_to(REPO)} block {i}", block) for i, block in enumerate(blocks, 1)]


def test_across_folders_only_a_folders_face_is_imported() -> None:
    """Rule 1: a module imports its own folder's modules, the modules of the folders above it (the shared
    vocabulary: `_config`, `_events`, ...), and other folders only through their `__init__`."""
    offenders = []
    for importer, path in MODULES.items():
        mine = _package(importer)
        for line, target in _imports(ast.parse(path.read_text()), importer):
            if target in PACKAGES:
                continue  # a face
            home = target.rpartition(".")[0]
            if home == mine or mine.startswith(home + "."):
                continue
            offenders.append(
                f"{path.relative_to(REPO)}:{line} imports {target}: import {home}'s face instead"
            )
    assert not offenders, "\n".join(offenders)


def test_adapters_bench_fuzz_and_docs_use_only_public_modules() -> None:
    """Rule 2: what users write — an adapter, a benchmark, a fuzz target, a docs example — needs nothing
    private; if it did, that thing belongs on a face (or the adapter is doing the core's work)."""
    sources = [
        *(SRC / "adapters").rglob("*.py"),
        # bench_frames.py times the frame reader, below every face (HybridCore would bury it), and
        # bench_stages.py times the layers under HybridCore one by one: the two exceptions.
        *(p for p in (REPO / "bench").glob("*.py") if p.name not in ("bench_frames.py", "bench_stages.py")),
        *(REPO / "fuzz").glob("*.py"),
    ]
    sources += [*(REPO / "docs").glob("*.md"), REPO / "README.md"]
    # The state-diagram generator draws the link's internal table: the one docs tool reading a private face.
    sources += [p for p in (REPO / "docs").glob("*.py") if p.name != "make_state_diagram.py"]
    offenders = []
    for path in sources:
        importer = next((m for m, p in MODULES.items() if p == path), None)
        for where, code in _code_of(path):
            try:
                tree = ast.parse(code)
            except SyntaxError:
                assert path.suffix == ".md", where
                continue  # a docs block that shows a shape (a dict with `...`), not code
            for line, target in _imports(tree, importer):
                if target.startswith("bybit_hybrid_core"):
                    ok = target in PUBLIC_CORE
                elif importer is not None:
                    ok = True  # an adapter's own modules
                else:
                    ok = not any(part.startswith("_") for part in target.split(".")[1:])
                if not ok:
                    offenders.append(f"{where}:{line} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_links_and_the_data_plane_meet_only_in_the_core_and_testing_is_an_independent_oracle() -> None:
    """Rule 3: `_link` and `_plane` never import each other (only `HybridCore` composes them); `testing`
    never imports the codec or the wire, so the FakeExchange checks them instead of sharing their bugs."""
    forbidden = {
        "bybit_hybrid_core._link": ("bybit_hybrid_core._plane",),
        "bybit_hybrid_core._plane": ("bybit_hybrid_core._link",),
        "bybit_hybrid_core.testing": (
            "bybit_hybrid_core._codec",
            "bybit_hybrid_core._link",
            "bybit_hybrid_core.codec",
        ),
    }
    offenders = []
    for importer, path in MODULES.items():
        for folder, banned in forbidden.items():
            if importer != folder and not importer.startswith(folder + "."):
                continue
            for line, target in _imports(ast.parse(path.read_text()), importer):
                if any(target == b or target.startswith(b + ".") for b in banned):
                    offenders.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_the_rules_would_catch_a_violation() -> None:
    """The checks are not vacuous: a side door written into a module is found by the same helpers."""
    tree = ast.parse("from .._link.subs import LinkSubs\nfrom bybit_hybrid_core._events import Dial\n")
    found = _imports(tree, "bybit_hybrid_core._plane.plane")
    assert (1, "bybit_hybrid_core._link.subs") in found and (2, "bybit_hybrid_core._events") in found
    assert "bybit_hybrid_core._link" in PACKAGES and "bybit_hybrid_core._plane.plane" in MODULES
