"""Sort into folders: copy/move, _unsure, clash suffixes, the log, crash states and undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.core import sorting
from desktop.core.batch import BatchResult
from desktop.core.sort_log import undo_moves
from desktop.core.sorting import UNSURE_DIR, safe_folder_name, sort_into_folders


def result(path: Path, label: str, confidence: float) -> BatchResult:
    return BatchResult(path, label, confidence, ((label, confidence),))


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    files = {"a": folder / "a.jpg", "b": folder / "sub" / "a.jpg", "c": folder / "c.png", "d": folder / "d.png"}
    for key, path in files.items():
        path.write_bytes(f"pixels of {key}".encode())
    return files


def _results(files: dict[str, Path]) -> list[BatchResult]:
    return [
        result(files["a"], "cat", 0.9),
        result(files["b"], "cat", 0.8),
        result(files["c"], "../dog/..", 0.95),
        result(files["d"], "cat", 0.3),
        BatchResult(files["a"].parent / "broken.jpg", None, None, (), "not an image"),
    ]


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_safe_folder_name() -> None:
    assert safe_folder_name("../etc/passwd") == "_etc_passwd"
    assert safe_folder_name("..") == "_unnamed"
    assert safe_folder_name("a\\b:c") == "a_b_c"
    assert safe_folder_name(UNSURE_DIR) != UNSURE_DIR
    assert safe_folder_name("CON") == "CON_"
    assert safe_folder_name("golden retriever") == "golden retriever"


def test_copy_with_threshold_and_clashes(sources: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "cat").mkdir(parents=True)
    (dest / "cat" / "a.jpg").write_bytes(b"already here")
    report = sort_into_folders(_results(sources), dest, threshold=0.5)
    assert not report.failed and report.skipped_errors == 1 and len(report.placed) == 4
    assert (dest / "cat" / "a.jpg").read_bytes() == b"already here"  # never overwritten
    assert (dest / "cat" / "a (1).jpg").read_bytes() == b"pixels of a"
    assert (dest / "cat" / "a (2).jpg").read_bytes() == b"pixels of b"
    assert (dest / "_dog_" / "c.png").read_bytes() == b"pixels of c"  # sanitised, stays inside dest
    assert (dest / UNSURE_DIR / "d.png").read_bytes() == b"pixels of d"
    assert all(path.exists() for path in sources.values())  # copies keep the originals
    entries = _log(report.log_path)
    assert report.log_path.parent == dest and entries[0]["event"] == "run"
    done = [e for e in entries if e["event"] == "done"]
    assert len(done) == 4 and all(e["op"] == "copy" for e in done)
    assert not list(dest.rglob("*.partial"))


@pytest.mark.parametrize("same_device", [True, False])
def test_move_and_undo(sources: dict[str, Path], tmp_path: Path, monkeypatch, same_device: bool) -> None:
    if not same_device:  # exercise the copy + fsync + rename + delete path
        monkeypatch.setattr(sorting, "_same_device", lambda a, b: False)
    dest = tmp_path / "dest"
    report = sort_into_folders(_results(sources), dest, threshold=0.5, move=True)
    assert len(report.placed) == 4 and not any(path.exists() for path in sources.values())
    assert (dest / "cat" / "a (1).jpg").read_bytes() == b"pixels of b"
    moved = {e["src"]: e["dst"] for e in _log(report.log_path) if e["event"] == "done"}
    assert moved == {str(src): str(dst) for src, dst in report.placed}
    undo = undo_moves(report.log_path)
    assert not undo.problems and len(undo.restored) == 4
    for key, path in sources.items():
        assert path.read_bytes() == f"pixels of {key}".encode()
    assert not [p for p in dest.rglob("*") if p.is_file() and not p.name.endswith(".jsonl")]
    assert not undo_moves(report.log_path).restored  # a second undo does nothing


def test_undo_reports_what_it_cannot_do(sources: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    report = sort_into_folders(_results(sources)[:3], dest, move=True)
    sources["a"].write_bytes(b"a new file took the old name")
    (dest / "_dog_" / "c.png").unlink()
    undo = undo_moves(report.log_path)
    assert undo.restored == [(dest / "cat" / "a (1).jpg", sources["b"])]
    problems = {path.name: reason for path, reason in undo.problems}
    assert "taken" in problems["a.jpg"] and "not found" in problems["c.png"]
    assert sources["a"].read_bytes() == b"a new file took the old name"  # untouched
    assert (dest / "cat" / "a.jpg").exists()  # left where it is


def test_crash_mid_move_is_recoverable(sources: dict[str, Path], tmp_path: Path) -> None:
    """Simulate kills at each step: the log plus undo always find every file."""
    dest = tmp_path / "dest"
    (dest / "cat").mkdir(parents=True)
    log_path = dest / "sort-log-crash.jsonl"
    log = sorting.SortLog(log_path)
    # 1: killed after logging 'begin', before the rename: file still at its source
    log.write(event="begin", op="move", src=str(sources["a"]), dst=str(dest / "cat" / "a.jpg"), tmp=None)
    # 2: killed after the rename, before logging 'done'
    log.write(event="begin", op="move", src=str(sources["c"]), dst=str(dest / "cat" / "c.png"), tmp=None)
    sources["c"].rename(dest / "cat" / "c.png")
    # 3: killed mid cross-device copy: a partial temp file beside the destination
    tmp = dest / "cat" / ".d.png.1.partial"
    log.write(event="begin", op="move", src=str(sources["d"]), dst=str(dest / "cat" / "d.png"), tmp=str(tmp))
    tmp.write_bytes(b"pix")
    # 4: killed after the cross-device rename, before deleting the source
    log.write(event="begin", op="move", src=str(sources["b"]), dst=str(dest / "cat" / "b.jpg"), tmp="x")
    (dest / "cat" / "b.jpg").write_bytes(sources["b"].read_bytes())
    log._handle.write('{"event": "do')  # a torn last line
    log.close()
    undo = undo_moves(log_path)
    assert not undo.problems
    for key, path in sources.items():
        assert path.read_bytes() == f"pixels of {key}".encode()
    assert sorted(p.name for p in (dest / "cat").iterdir()) == []


def test_unreadable_source_is_reported_and_run_goes_on(sources: dict[str, Path], tmp_path: Path) -> None:
    missing = result(tmp_path / "gone.jpg", "cat", 0.9)
    report = sort_into_folders([missing, result(sources["c"], "dog", 0.9)], tmp_path / "dest")
    assert [path.name for path, _ in report.failed] == ["gone.jpg"]
    assert (tmp_path / "dest" / "dog" / "c.png").exists()
    assert not list((tmp_path / "dest").rglob("*.partial"))
