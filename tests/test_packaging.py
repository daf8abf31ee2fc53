"""The built wheel is complete: every sub-package ships, every module imports from it, the demo runs from it.

pyproject.toml lists its packages explicitly (`[tool.setuptools] packages = [...]`), so a new sub-package
that is not added there is silently left out of the wheel — while the editable install the rest of the
suite runs on still finds it. These tests build the wheel, install it into a directory of its own, and use
only that copy of our code (the dependencies come from the running venv).

Offline only: pip runs with `--no-index --no-deps` and nothing touches more than the local disk and
127.0.0.1. The wheel is built from a snapshot of the repository (so no `build/` or `*.egg-info` is written
into the work tree, and no stale `build/lib` from an earlier build can leak into the wheel). The real
`pip wheel --no-build-isolation` is used when the venv can build wheels offline (setuptools >= 70.1, or the
`wheel` package); the setuptools that a fresh venv bundles (65.x) cannot (`invalid command 'bdist_wheel'`),
so then setuptools' own `build_py` — the step that applies `packages`, `package-dir` and `package-data`,
and whose output is exactly a pure wheel's content — fills a directory that is zipped into a wheel here.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repo_paths import REPO

# source directory -> the top-level package it installs as (pyproject.toml's `package-dir`)
ROOTS = {"src/bybit_hybrid_core": "bybit_hybrid_core", "src/adapters": "bybit_hybrid"}
# Every module of the wheel is imported, except:
# - `__main__` modules (`python -m pkg` entry points): importing one runs its program, so each is compiled
#   instead, and `bybit_hybrid.__main__` is run for real by the demo test;
# - the modules listed here, each with its reason (e.g. one that needs an optional extra). None now.
NOT_IMPORTED: dict[str, str] = {}
TIMEOUT = 120  # a hang guard only
JUNK = {".git", ".venv", "build", "dist", "__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache"}
JUNK |= {".pytest_cache", "node_modules"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
        BYBIT_TESTNET="",
        BYBIT_DEMO="",
    )
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, (
        f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


# ------------------------------------------------------------------------------------------- building


def _snapshot(dest: Path) -> Path:
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in JUNK or n.endswith(".egg-info") or n.startswith(".venv")}

    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def _can_pip_wheel_offline() -> bool:
    return any(
        importlib.util.find_spec(name) is not None for name in ("wheel", "setuptools.command.bdist_wheel")
    )


def _pip_wheel(tree: Path, out: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    _check(_run([*cmd, "--no-cache-dir", "-w", str(out), str(tree)], cwd=out), "pip wheel")


def _setuptools_wheel(tree: Path, out: Path) -> None:
    """`build_py` + `egg_info` (what `bdist_wheel` runs for a pure package), zipped per PEP 427."""
    lib, meta = out / "lib", out / "meta"
    meta.mkdir()
    setup = [sys.executable, "-c", "from setuptools import setup; setup()", "--quiet"]
    proc = _run([*setup, "egg_info", "--egg-base", str(meta), "build_py", "--build-lib", str(lib)], cwd=tree)
    _check(proc, "setuptools build_py")
    (egg_info,) = meta.glob("*.egg-info")
    pkg_info = (egg_info / "PKG-INFO").read_text()
    fields = dict(line.split(": ", 1) for line in pkg_info.splitlines() if ": " in line)
    name, version = fields["Name"].replace("-", "_"), fields["Version"]
    dist_info = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {
        p.relative_to(lib).as_posix(): p.read_bytes() for p in sorted(lib.rglob("*")) if p.is_file()
    }
    files[f"{dist_info}/METADATA"] = pkg_info.encode()
    wheel_meta = "Wheel-Version: 1.0\nGenerator: tests/test_packaging.py\nRoot-Is-Purelib: true\n"
    files[f"{dist_info}/WHEEL"] = (wheel_meta + "Tag: py3-none-any\n").encode()
    for extra in ("entry_points.txt", "top_level.txt"):
        if (egg_info / extra).exists():
            files[f"{dist_info}/{extra}"] = (egg_info / extra).read_bytes()
    record = []
    for arcname, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(out / f"{name}-{version}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as whl:
        for arcname, data in files.items():
            whl.writestr(arcname, data)
    shutil.rmtree(lib)
    shutil.rmtree(meta)


@dataclass(frozen=True)
class Built:
    tree: Path  # the snapshot of the repository the wheel was built from
    wheel: Path
    builder: str
    site: Path  # the wheel installed with `pip install --target`
    work: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    work = tmp_path_factory.mktemp("packaging")
    tree = _snapshot(work / "tree")
    out = work / "wheelhouse"
    out.mkdir()
    if _can_pip_wheel_offline():
        builder = "pip wheel --no-build-isolation"
        _pip_wheel(tree, out)
    else:
        builder = "setuptools build_py (this venv's setuptools has no bdist_wheel)"
        _setuptools_wheel(tree, out)
    (wheel,) = out.glob("*.whl")
    site = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir"]
    pip += ["--no-compile", "--no-warn-script-location", "--target", str(site)]
    proc = _run([*pip, str(wheel)], cwd=work)
    _check(proc, f"pip install --target of the wheel built by {builder}")
    yield Built(tree=tree, wheel=wheel, builder=builder, site=site, work=work)


# ----------------------------------------------------------------------------------------- the wheel


def _source_layout(tree: Path) -> tuple[dict[str, str], set[str]]:
    """{package: source dir} for every directory holding .py files, and every .py / py.typed archive path."""
    packages: dict[str, str] = {}
    files: set[str] = set()
    for src, top in ROOTS.items():
        root = tree / src
        assert (root / "__init__.py").is_file(), f"{src}/__init__.py is missing: is ROOTS still right?"
        assert (root / "py.typed").is_file(), f"{src}/py.typed is missing (the package promises types)"
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.name == "py.typed":
                rel = path.relative_to(root)
                files.add("/".join((top, *rel.parts)))
                if path.suffix == ".py":
                    packages[".".join((top, *rel.parent.parts))] = path.parent.relative_to(tree).as_posix()
    return packages, files


def test_wheel_holds_every_package_module_and_marker_of_the_source_tree(built: Built) -> None:
    packages, expected = _source_layout(built.tree)
    with zipfile.ZipFile(built.wheel) as whl:
        names = {n for n in whl.namelist() if not n.endswith("/")}
    shipped = {n for n in names if n.split("/", 1)[0] in ROOTS.values()}
    shipped_dirs = {n.rsplit("/", 1)[0].replace("/", ".") for n in shipped}
    missing_pkgs = sorted(p for p in packages if p not in shipped_dirs)
    missing_files = sorted(
        f for f in expected - shipped if f.rsplit("/", 1)[0].replace("/", ".") in shipped_dirs
    )
    problems = []
    if missing_pkgs:
        listed = "\n".join(f"  {p}  (from {packages[p]}/)" for p in missing_pkgs)
        problems.append(
            f"the wheel lacks {len(missing_pkgs)} package(s) that exist in the source tree:\n{listed}\n"
            "add each to `packages = [...]` under [tool.setuptools] in pyproject.toml: the editable "
            "install the tests use still finds them, but users of the wheel get ModuleNotFoundError"
        )
    if missing_files:
        problems.append(
            "files missing from packages the wheel has:\n" + "\n".join(f"  {f}" for f in missing_files)
        )
    assert not problems, f"wheel {built.wheel.name} (built by {built.builder}):\n" + "\n\n".join(problems)
    # and nothing the source tree does not have (a stale build directory would show here)
    extra = sorted(n for n in shipped if n.endswith(".py") and n not in expected)
    assert not extra, f"the wheel ships modules the source tree does not have: {extra}"


def test_wheel_declares_the_console_script(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as whl:
        (entry_points,) = [n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = whl.read(entry_points).decode()
    scripts = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    assert "bybit-hybrid = bybit_hybrid.cli:main" in [line.strip() for line in scripts.splitlines()], text


# -------------------------------------------------------------------- importing and running the wheel

# Runs in a subprocess with PYTHONPATH=<site>. It drops the editable install's import hooks first: its
# finder sits after the path finder, so our top-level packages come from <site> anyway, but a sub-package
# missing from the wheel would otherwise be found by it, in the source tree, and hide exactly the bug.
CHILD = r"""
import importlib, json, os, pkgutil, runpy, sys, traceback
from pathlib import Path

site, repo, mode, *rest = sys.argv[1:]  # imports: rest = [json skip list, json source module list]
site, src = Path(site).resolve(), (Path(repo) / "src").resolve()
TOPS = ("bybit_hybrid_core", "bybit_hybrid")

def editable(obj):
    return str(getattr(obj, "__module__", "") or "").startswith("__editable__")

def under(path, root):
    return path is not None and Path(path).resolve().is_relative_to(root)

sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
sys.path[:] = [p for p in sys.path if not (p.startswith("__editable__") or (p and under(p, src)))]
sys.path_importer_cache.clear()

def origins():
    out = {}
    for name, module in sorted(sys.modules.items()):
        if name in TOPS or name.startswith(tuple(t + "." for t in TOPS)):
            where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), None)
            if not under(where, site):
                out[name] = str(where)
    return out

for top in TOPS:
    module = importlib.import_module(top)
    if not under(module.__file__, site):
        sys.exit(f"FATAL: {top} was imported from {module.__file__}, not from the wheel in {site}")

if mode == "imports":
    skip = json.loads(rest[0])
    walked, errors = [], {}
    def onerror(name):
        errors[name] = traceback.format_exc()
    for top in TOPS:
        for info in pkgutil.walk_packages([str(site / top)], top + ".", onerror=onerror):
            walked.append(info.name)
    on_disk = []
    for top in TOPS:
        for path in sorted((site / top).rglob("*.py")):
            parts = path.relative_to(site).with_suffix("").parts
            on_disk.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    source = json.loads(rest[1])  # the source tree's modules: one the wheel lacks fails to import here
    imported, compiled = [], []
    for name in sorted((set(walked) | set(on_disk) | set(source)) - set(TOPS)):
        if name in skip:
            continue
        try:
            if name.rpartition(".")[2] == "__main__":  # runs its program on import: compile only
                path = site.joinpath(*name.split(".")).with_suffix(".py")
                compile(path.read_text(), str(path), "exec")
                compiled.append(name)
            else:
                importlib.import_module(name)
                imported.append(name)
        except BaseException:
            errors[name] = traceback.format_exc()
    print(json.dumps({
        "walked": sorted(walked), "on_disk": sorted(on_disk), "source": sorted(source),
        "imported": imported, "compiled": compiled,
        "errors": errors, "outside": origins(),
    }))
else:  # run-module: `python -m <rest[0]> <rest[1:]>`, then tell where our modules came from
    sys.argv[:] = rest
    try:
        runpy.run_module(rest[0], run_name="__main__", alter_sys=True)
    finally:
        Path(os.environ["ORIGINS_REPORT"]).write_text(json.dumps(origins()))
"""


def _child(built: Built, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = built.work / "child" / "child.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(CHILD)
    cmd = [sys.executable, str(script), str(built.site), str(REPO), *args]
    return _run(cmd, cwd=built.work, PYTHONPATH=str(built.site), **env)


def test_every_module_imports_from_the_installed_wheel(built: Built) -> None:
    _, files = _source_layout(built.tree)
    source = sorted(
        f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for f in files if f.endswith(".py")
    )
    proc = _child(built, "imports", json.dumps(sorted(NOT_IMPORTED)), json.dumps(source))
    _check(proc, "importing the installed wheel")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["errors"], "modules of the installed wheel fail to import:\n\n" + "\n".join(
        f"{name}:\n{tb}" for name, tb in report["errors"].items()
    )
    assert not report["outside"], f"imported from outside the wheel's install dir: {report['outside']}"
    unwalked = sorted(set(report["on_disk"]) - set(report["walked"]) - set(ROOTS.values()))
    assert not unwalked, f"pkgutil.walk_packages does not reach {unwalked} (a directory without __init__.py?)"
    expected = (set(report["on_disk"]) | set(source)) - set(ROOTS.values()) - set(NOT_IMPORTED)
    assert set(report["imported"]) | set(report["compiled"]) == expected
    assert all(name.endswith(".__main__") for name in report["compiled"]), report["compiled"]
    assert "bybit_hybrid.__main__" in report["compiled"]  # what the demo test runs
    stale = sorted(set(NOT_IMPORTED) - set(report["on_disk"]) - set(source))
    assert not stale, f"NOT_IMPORTED names modules the wheel does not have: {stale}"
    assert "bybit_hybrid.cli" in report["imported"]  # the console script's module


def test_demo_runs_from_the_installed_wheel(built: Built) -> None:
    origins = built.work / "demo-origins.json"
    args = ["run-module", "bybit_hybrid", "demo", "--duration", "3", "--json"]
    proc = _child(built, *args, ORIGINS_REPORT=str(origins))
    _check(proc, "`python -m bybit_hybrid demo --duration 3 --json` from the installed wheel")
    assert "Traceback" not in proc.stderr, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]  # NDJSON, every line
    assert any(e.get("type") == "PositionUpdate" for e in events), proc.stdout[-3000:]
    outside = json.loads(origins.read_text())
    assert not outside, f"the demo ran code from outside the wheel's install dir: {outside}"
