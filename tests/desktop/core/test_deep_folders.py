"""Folders nested thousands deep through the app's walker and `convnet-classify`.

Issue: 1,100 levels crashed `convnet-classify` with a RecursionError, and 900 levels took
9.7 s for 3 images because every level re-resolved its whole real path (work growing
with depth squared). The walk is now iterative (convnet_common/folder_walk.py); a folder
whose path passes PATH_MAX is reported on stderr instead of silently dropped.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deep_folders import chain_path, make_chain, remove_chain

from desktop.core.batch import iter_image_files

REPO = Path(__file__).resolve().parents[3]
TIMEOUT_S = 120  # generous: the walk takes well under a second; a quadratic one took minutes


@pytest.fixture
def deep(tmp_path: Path):
    root = tmp_path / "deep"
    yield root
    if root.exists():
        remove_chain(root)  # pytest's own clean-up recurses, and cannot remove paths past PATH_MAX


def _file_system_calls(monkeypatch: pytest.MonkeyPatch, root: Path) -> int:
    """Calls to os.scandir/stat/lstat/open/fstat (realpath's per-level lstat included) for one walk."""
    calls = 0

    def counted(real):
        def call(*args, **kwargs):
            nonlocal calls
            calls += 1
            return real(*args, **kwargs)

        return call

    with monkeypatch.context() as patch:
        for name in ("scandir", "stat", "lstat", "open", "fstat"):
            patch.setattr(os, name, counted(getattr(os, name)))
        found = list(iter_image_files([root]))
    assert len(found) == 1
    return calls


def test_walk_work_grows_linearly_with_depth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twice the depth costs about twice the file-system calls (it cost four times before)."""
    counts = {}
    for depth in (150, 300):
        make_chain(tmp_path / str(depth), depth, {depth: ["x.png"]})
        counts[depth] = _file_system_calls(monkeypatch, tmp_path / str(depth))
    assert counts[300] <= 2.2 * counts[150], counts
    assert counts[300] <= 5 * 300, counts  # a few calls per folder, whatever its depth


def _classify(folder: Path, model: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "desktop.classify_cli", "--model", str(model), "--provider", "cpu", str(folder)]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)


def test_cli_classifies_images_1100_folders_deep(colour_model: Path, deep: Path) -> None:
    make_chain(deep, 1100, {1100: ["a.png", "b.png", "c.png"]})
    result = _classify(deep, colour_model)
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    inner = chain_path(deep, 1100)
    assert [row["path"] for row in rows] == [os.path.join(inner, name) for name in ("a.png", "b.png", "c.png")]
    assert all(row["label"] and not row["error"] for row in rows)


def test_cli_reports_the_folder_past_path_max_and_classifies_the_rest(colour_model: Path, deep: Path) -> None:
    """3,000 levels: the images 1,000 deep are classified; the folder whose path is too long
    to open is named on stderr with the reason (exit 1), not silently skipped."""
    make_chain(deep, 3000, {1000: ["shallow.png"], 3000: ["lost.png"]})
    result = _classify(deep, colour_model)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 1, result.stderr[-2000:]
    rows = {row["path"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    shallow = os.path.join(chain_path(deep, 1000), "shallow.png")
    assert rows[shallow]["label"] and not rows[shallow]["error"]
    too_long = [path for path, row in rows.items() if row["error"]]
    assert len(too_long) == 1 and len(os.fsencode(too_long[0])) >= 4096 - 2
    assert "longer than the system allows" in rows[too_long[0]]["error"]
    assert f"convnet-classify: {too_long[0]}: the path is longer than the system allows" in result.stderr
