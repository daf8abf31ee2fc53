"""Packaging that tells the truth: what the code imports is declared, and the docs say which extra they need.

- Every third-party package imported anywhere under src/ is declared: in `[project] dependencies`, or in an
  extra of `[project.optional-dependencies]` — and then its import is optional at run time: guarded by
  `try/except ImportError` whose handler either falls back or raises an error naming
  `pip install "bybit-hybrid[EXTRA]"`, so a base install never fails with a bare ModuleNotFoundError.
- With the extras' packages hidden, every module still imports, and the features that need one say which.
- The stdlib adapters (`bybit_hybrid.asyncio`, `bybit_hybrid.threaded`, the bot drop-in) import no anyio.
- Every docs example that needs an extra (serving TLS, Prometheus) is introduced by a line naming it.
- mypy, run on a user's file, finds our packages and their types in the installed environment.

Offline: nothing here downloads; the source is read with `ast`, the installed environment with importlib.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_paths import REPO

SRC = REPO / "src"
OURS = {"bybit_hybrid", "bybit_hybrid_core"}
PROJECT = "bybit-hybrid"
# Modules that only a tool which is itself the dependency loads, so importing it plainly is truthful.
LOADED_ONLY_BY = {
    "src/adapters/pytest_plugin.py": {"pytest"},  # loaded by pytest through the pytest11 entry point
}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}
TOOLING = {"test", "dev"}  # extras for working on this repository, not for users
TIMEOUT = 300  # a hang guard only


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> tuple[str, set[str]]:
    """(distribution name, extras) of a PEP 508 requirement string (enough of it for pyproject's lists)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", requirement)
    assert found, f"cannot read the requirement {requirement!r} in pyproject.toml"
    extras = {e.strip() for e in (found[2] or "").split(",") if e.strip()}
    return _norm(found[1]), extras


@dataclass(frozen=True)
class Declared:
    base: set[str]  # normalised distribution names of [project] dependencies
    extras: dict[str, set[str]]  # extra -> the distributions it brings (self-references resolved)

    def extras_with(self, dist: str) -> set[str]:
        return {extra for extra, dists in self.extras.items() if dist in dists}


def _declared() -> Declared:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {_requirement_name(r)[0] for r in project.get("dependencies", [])}
    raw = {
        extra: [_requirement_name(r) for r in reqs]
        for extra, reqs in project.get("optional-dependencies", {}).items()
    }

    def resolve(extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
        dists: set[str] = set()
        for name, sub in raw[extra]:
            if name == _norm(PROJECT):  # e.g. dev = ["bybit-hybrid[test]", ...]
                for other in sub - seen - {extra}:
                    dists |= resolve(other, seen | {extra})
            else:
                dists.add(name)
        return dists

    return Declared(base, {extra: resolve(extra) for extra in raw})


@dataclass(frozen=True)
class Import:
    where: str  # "src/adapters/x.py:12"
    path: str  # "src/adapters/x.py"
    module: str  # the top-level import name
    guard: ast.ExceptHandler | None  # the except ImportError handler around it, if any
    type_only: bool  # under `if TYPE_CHECKING:`
    earlier: tuple[ast.ExceptHandler, ...]  # ImportError handlers of `try`s that run before it in its scopes


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in IMPORT_ERRORS for k in kinds)


def _third_party_imports() -> Iterator[Import]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(), rel)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            guard, type_only, child = None, False, node
            earlier: list[ast.ExceptHandler] = []
            while child in parents:
                parent = parents[child]
                if isinstance(parent, ast.Try) and child in parent.body and guard is None:
                    guard = next((h for h in parent.handlers if _catches_import_error(h)), None)
                if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
                    type_only = type_only or child in parent.body
                if isinstance(parent, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef):
                    earlier += [
                        h
                        for stmt in parent.body
                        if isinstance(stmt, ast.Try) and (stmt.end_lineno or 0) < node.lineno
                        for h in stmt.handlers
                        if _catches_import_error(h)
                    ]
                child = parent
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in OURS or top == "__future__":
                    continue
                yield Import(f"{rel}:{node.lineno}", rel, top, guard, type_only, tuple(earlier))


def _distribution(module: str) -> str:
    """The distribution that installs import name `module` (the name itself when it is not installed)."""
    dists = importlib.metadata.packages_distributions().get(module, [])
    return _norm(dists[0]) if dists else _norm(module)


def _names_an_extra(handler: ast.ExceptHandler, extras: set[str], fallback_ok: bool = True) -> bool:
    """The handler falls back (raises nothing; accepted when `fallback_ok`), or raises an error whose text
    (a string in the handler) names one of `extras`."""
    if not any(isinstance(n, ast.Raise) for n in ast.walk(handler)):
        return fallback_ok
    text = " ".join(
        n.value for n in ast.walk(handler) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )
    return any(f"{PROJECT}[{extra}]" in text for extra in extras)


def _advice(extras: set[str]) -> str:
    """How to install `extras`, the user-facing ones first (not the test/dev tooling)."""
    chosen = sorted(extras - TOOLING) or sorted(extras)
    return " or ".join(f'`pip install "{PROJECT}[{e}]"`' for e in chosen)


def test_every_imported_package_is_declared_and_extras_are_optional_at_run_time() -> None:
    declared = _declared()
    problems: list[str] = []
    found = list(_third_party_imports())
    assert found, "no third-party import found under src/: is SRC right?"
    for imp in found:
        dist = _distribution(imp.module)
        if dist in declared.base:
            continue
        extras = declared.extras_with(dist)
        if not extras:
            problems.append(
                f"{imp.where} imports {imp.module} (distribution {dist}), which pyproject.toml declares "
                f"nowhere: add {dist!r} to [project] dependencies, or to an extra in "
                "[project.optional-dependencies] and import it under try/except ImportError raising an error "
                f'that says `pip install "{PROJECT}[EXTRA]"`'
            )
            continue
        if imp.type_only or imp.module in LOADED_ONLY_BY.get(imp.path, set()):
            continue
        if imp.guard is not None and _names_an_extra(imp.guard, extras):
            continue
        # ...or an earlier import in its function or module already refused to go on without the extra
        # (e.g. the module's own top-level guarded import, or `from .. import metrics` guarded first)
        if not any(_names_an_extra(h, extras, fallback_ok=False) for h in imp.earlier):
            problems.append(
                f"{imp.where} imports {imp.module} (extra {sorted(extras - TOOLING) or sorted(extras)}) "
                "unguarded: a base install fails there with a bare ModuleNotFoundError. Wrap it in "
                f"try/except ImportError raising an error that says {_advice(extras)} (or fall back), or "
                f"move {dist!r} to [project] dependencies"
            )
    assert not problems, "\n".join(problems)


def test_the_declared_dependencies_are_installed_here() -> None:
    """The environment the suite runs in has every base dependency (else the checks above read a guess)."""
    missing = []
    for dist in sorted(_declared().base):
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
    assert not missing, (
        f"declared in [project] dependencies but not installed: {missing}; reinstall: pip install -e ."
    )


# ---------------------------------------------------------------------------- the extras at run time

_HIDE = """
import importlib.abc, sys
HIDDEN = set(sys.argv[1].split(","))
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"hidden by the test: {name}", name=name)
        return None
sys.meta_path.insert(0, Hide())
"""


def _without(hidden: set[str], code: str) -> dict[str, object]:
    """Run `code` in a child Python where the import names `hidden` cannot be imported; it prints JSON."""
    script = _HIDE + code
    proc = subprocess.run(
        [sys.executable, "-c", script, ",".join(sorted(hidden))],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, f"child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _extras_only() -> set[str]:
    """Import names of the distributions that only an extra brings (not the base, not the test tooling)."""
    declared = _declared()
    dists = set().union(*(declared.extras[e] for e in declared.extras if e not in TOOLING))
    dists -= declared.base
    names = importlib.metadata.packages_distributions()
    return {name for name, owners in names.items() if {_norm(o) for o in owners} & dists}


def test_every_module_imports_without_the_extras_and_the_extras_face_names_itself() -> None:
    hidden = _extras_only()
    assert {"trustme", "prometheus_client"} <= hidden, f"pyproject's extras changed: {sorted(hidden)}"
    result = _without(
        hidden,
        """
import importlib, json, pkgutil
import bybit_hybrid, bybit_hybrid_core
failed, named = {}, {}
for package in (bybit_hybrid_core, bybit_hybrid):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.rsplit(".", 1)[-1] == "__main__" or info.name == "bybit_hybrid.pytest_plugin":
            continue  # running a __main__ runs its program; the pytest plugin is loaded by pytest itself
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            (named if "bybit-hybrid[" in str(exc) else failed)[info.name] = repr(exc)
print(json.dumps({"failed": failed, "named": sorted(named)}))
""",
    )
    assert result["failed"] == {}, (
        f"modules that need an extra at import, without naming it: {result['failed']}"
    )
    assert result["named"] == ["bybit_hybrid.metrics"], (
        "only bybit_hybrid.metrics (the `metrics` extra's own module) may refuse to import without its extra"
    )


def test_serving_tls_without_trustme_names_the_sim_extra() -> None:
    result = _without(
        {"trustme"},
        """
import json
from bybit_hybrid.server import ServedExchange
plain = ServedExchange(tls=False).start()   # plain ws:// needs no extra
plain.stop()
try:
    ServedExchange(tls=True).start()
except ModuleNotFoundError as exc:
    print(json.dumps({"name": exc.name, "text": str(exc)}))
else:
    print(json.dumps({"name": None, "text": "started"}))
""",
    )
    assert result["name"] == "trustme", result
    assert 'pip install "bybit-hybrid[sim]"' in str(result["text"]), result


def test_the_stdlib_adapters_and_the_bot_import_no_anyio() -> None:
    result = _without(
        set(),
        """
import json, sys
import bybit_hybrid.asyncio, bybit_hybrid.threaded, bybit_hybrid.bot, bybit_hybrid.rest
print(json.dumps({"loaded": sorted(m for m in ("anyio", "trio", "sniffio") if m in sys.modules)}))
""",
    )
    assert result["loaded"] == [], "the stdlib adapters are sold as needing no anyio (docs/adapters.md)"


# ---------------------------------------------------------------------------------------- the docs

FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)
HEADING = re.compile(r"^#+ ", re.M)
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
SERVED = re.compile(r"ServedExchange\((?P<args>[^)]*)\)")


def _needs(body: str) -> set[str]:
    """Which extra a code block needs (by what it uses), as the import names that extra brings."""
    needs = set()
    if any("tls=False" not in m["args"] for m in SERVED.finditer(body)):  # tls=True is the default
        needs.add("trustme")
    if re.search(r"\btrustme\b", body):
        needs.add("trustme")
    if re.search(r"\bprometheus_client\b|\bbybit_hybrid\.metrics\b", body):
        needs.add("prometheus_client")
    return needs


def test_docs_examples_that_need_an_extra_say_which() -> None:
    declared = _declared()
    problems = []
    for page in PAGES:
        text = page.read_text()
        previous_end = 0
        for block in FENCE.finditer(text):
            if block["info"].strip().startswith("python"):
                # the prose that introduces this block: since the last block or heading before it
                lead = text[previous_end : block.start()]
                heads = list(HEADING.finditer(lead))
                lead = lead[heads[-1].start() :] if heads else lead
                line = text.count("\n", 0, block.start()) + 1
                for module in sorted(_needs(block["body"])):
                    extras = declared.extras_with(_distribution(module)) - TOOLING
                    assert extras, f"{module} is in no user-facing extra of pyproject.toml"
                    if not any(f"{PROJECT}[{e}]" in lead for e in extras):
                        fix = " or ".join(f'`pip install "{PROJECT}[{e}]"`' for e in sorted(extras))
                        problems.append(
                            f"{page.relative_to(REPO)}:{line}: this example needs {module}, which a plain "
                            f"`pip install .` lacks; say {fix} in the line before it"
                        )
            previous_end = block.end()
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------------- mypy

USER_OK = """
from bybit_hybrid import HybridStream
from bybit_hybrid.threaded import HybridStream as ThreadedStream
from bybit_hybrid_core import Config, PositionUpdate


def symbols(config: Config) -> tuple[str, ...]:
    return config.categories


async def first(stream: HybridStream) -> PositionUpdate | None:
    async for event in stream:
        if isinstance(event, PositionUpdate):
            return event
    return None


def threaded(stream: ThreadedStream) -> None:
    stream.stop()
"""
USER_WRONG = """
from bybit_hybrid_core import Config


def symbols(config: Config) -> int:
    return config.categories  # a tuple, not an int: only a mypy that reads our types can tell
"""


def _editable_finder() -> bool:
    """Are our packages found through setuptools' editable import hook (a finder no static tool follows)?"""
    import bybit_hybrid

    hooked = any(getattr(f, "__module__", "").startswith("__editable__") for f in sys.meta_path)
    return hooked and Path(bybit_hybrid.__file__ or "").parent == SRC / "adapters"


def _mypy(tmp_path: Path, name: str, code: str, *flags: str) -> int:
    """mypy's exit status on `code` as a user's file, with a config of its own (not the repository's)."""
    (tmp_path / f"{name}.py").write_text(code)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "cache"),
         "--python-executable", sys.executable, *flags, f"{name}.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    return proc.returncode


def test_mypy_finds_our_packages_and_types_in_a_users_project(tmp_path: Path) -> None:
    if shutil.which("mypy") is None and importlib.util.find_spec("mypy") is None:
        pytest.skip('mypy is not installed (it is in the dev extra: pip install -e ".[dev]")')
    # Refused with missing imports ignored (not strict): only our real types, not Any, make it wrong.
    wrong = _mypy(tmp_path, "wrong", USER_WRONG, "--ignore-missing-imports")
    if _mypy(tmp_path, "user", USER_OK, "--strict") != 0 or wrong != 1:
        if _editable_finder():
            pytest.xfail(
                "setuptools' default editable install maps bybit_hybrid to src/adapters through an import "
                "hook, which mypy cannot follow; `pip install -e . --config-settings editable_mode=strict` "
                "(a link tree), a wheel install, or a src/bybit_hybrid layout with package-dir {'' = 'src'} "
                "makes it readable"
            )
        pytest.fail("mypy cannot find bybit_hybrid / bybit_hybrid_core (or their types) in this environment")
