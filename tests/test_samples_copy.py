"""The repository's copy of the real Bybit samples is the shared folder's, file for file (when it is here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_paths import REPO, SHARED_SAMPLES

COPY = REPO / "tests" / "samples" / "bybit-v5"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_copy_holds_samples() -> None:
    assert len(_files(COPY)) > 50


@pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="no shared/bybit-v5-samples beside the repository")
def test_the_copy_matches_the_shared_samples() -> None:
    copy, shared = _files(COPY), _files(SHARED_SAMPLES)
    assert sorted(copy) == sorted(shared), (
        "copy again: cp -r ../shared/bybit-v5-samples/. tests/samples/bybit-v5/"
    )
    assert [name for name in copy if copy[name] != shared[name]] == []
