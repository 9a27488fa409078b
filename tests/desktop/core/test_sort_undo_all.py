"""Undo of a DEST undoes every sort into it not yet undone, and says exactly what it did;
a sort whose DEST is (inside) its source leaves already-sorted files alone.

The issue: `convnet-undo-sort DEST` read only the newest log, so after a killed sort run
again it reported files "moved back" that were still in DEST; two sorts into one DEST
shared a log name; and re-running a sort with DEST = source renamed every file "a (1).png".
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from desktop import undo_sort_cli
from desktop.classify_cli import main as classify
from desktop.core.batch import BatchResult
from desktop.core.sorting import LOG_PREFIX, sort_into_folders

COLOURS = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230)}


def _result(path: Path, label: str) -> BatchResult:
    return BatchResult(path, label, 0.9, ((label, 0.9),))


def _files(folder: Path, count: int, prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"{prefix}{index}.png"
        path.write_bytes(f"pixels of {folder.name}/{index}".encode())
        paths.append(path)
    return paths


def _contents(paths: list[Path]) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


def _left_in(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.is_file() and not p.name.startswith(LOG_PREFIX)]


def _undo_cli(capsys: pytest.CaptureFixture[str], target: Path) -> tuple[int, list[str]]:
    code = undo_sort_cli.main([str(target)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_undo_of_dest_after_a_killed_sort_run_again_moves_everything_back(tmp_path: Path, capsys) -> None:
    sources = _files(tmp_path / "src", 6)
    original = _contents(sources)
    dest = tmp_path / "dest"
    cancel = threading.Event()
    first = sort_into_folders(
        [_result(p, "cat") for p in sources],
        dest,
        move=True,
        cancel=cancel,
        progress=lambda done, total: cancel.set() if done == 3 else None,
    )
    assert len(first.placed) == 3  # "killed" half-way
    rest = [p for p in sources if p.exists()]
    second = sort_into_folders([_result(p, "cat") for p in rest], dest, move=True)
    assert len(second.placed) == 3 and first.log_path != second.log_path
    code, lines = _undo_cli(capsys, dest)
    assert code == 0, lines
    assert _contents(sources) == original and not _left_in(dest)
    assert lines[-1] == (
        "total over 2 sorts: moved back 6, already at source 0, missing 0, partial copies removed 0, not undone 0"
    )
    code, lines = _undo_cli(capsys, dest)  # both logs are marked undone: nothing claimed twice
    assert code == 0 and "nothing to undo" in lines[-1]


@pytest.mark.parametrize("interleaved", [False, True])
def test_two_sorts_into_one_dest_each_keep_a_log_and_undo_restores_both(
    tmp_path: Path, capsys, interleaved: bool
) -> None:
    one, two = _files(tmp_path / "one", 40), _files(tmp_path / "two", 40)  # same names: clashes
    original = _contents(one + two)
    dest = tmp_path / "dest"
    runs = [[_result(p, "cat") for p in one], [_result(p, "cat") for p in two]]
    if interleaved:
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=lambda r=r: (start.wait(), sort_into_folders(r, dest, move=True))) for r in runs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for run in runs:
            sort_into_folders(run, dest, move=True)
    assert len(list(dest.glob(f"{LOG_PREFIX}*.jsonl"))) == 2
    assert len(_left_in(dest)) == 80
    code, lines = _undo_cli(capsys, dest)
    assert code == 0, lines
    assert _contents(one + two) == original and not _left_in(dest)
    assert "moved back 80" in lines[-1] and "missing 0" in lines[-1]


def test_undo_of_one_log_undoes_just_that_sort(tmp_path: Path, capsys) -> None:
    one, two = _files(tmp_path / "one", 3), _files(tmp_path / "two", 3, "other")
    dest = tmp_path / "dest"
    first = sort_into_folders([_result(p, "cat") for p in one], dest, move=True)
    sort_into_folders([_result(p, "dog") for p in two], dest, move=True)
    code, lines = _undo_cli(capsys, first.log_path)
    assert code == 0 and all(p.exists() for p in one) and not any(p.exists() for p in two)
    assert lines == [
        f"log {first.log_path}: moved back 3, already at source 0, missing 0, partial copies removed 0, not undone 0"
    ]
    code, lines = _undo_cli(capsys, dest)  # the rest: the other sort only, said per log
    assert code == 0 and all(p.exists() for p in two) and not _left_in(dest)
    assert len(lines) == 1 and "moved back 3" in lines[0] and str(first.log_path) not in lines[0]


def test_a_file_gone_from_dest_is_reported_missing_by_name_not_moved_back(tmp_path: Path, capsys) -> None:
    sources = _files(tmp_path / "src", 3)
    report = sort_into_folders([_result(p, "cat") for p in sources], tmp_path / "dest", move=True)
    gone = report.placed[1][1]
    gone.unlink()
    code, lines = _undo_cli(capsys, tmp_path / "dest")
    assert code == 1
    assert any(str(gone) in line and "not found" in line for line in lines[:-1])
    assert "moved back 2, already at source 0, missing 1" in lines[-1]


def _png(path: Path, colour: str) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.empty((32, 32, 3), dtype=np.uint8)
    image[:] = COLOURS[colour][::-1]
    assert cv2.imwrite(str(path), image)


def _photos(folder: Path) -> dict[Path, bytes]:
    for index, colour in enumerate(["red", "green", "blue", "red"]):
        _png(folder / f"photo{index}.png", colour)
    return _contents(sorted(folder.glob("*.png")))


def _sort_cli(model: Path, source: Path, dest: Path, *extra: str) -> int:
    return classify([str(source), "--model", str(model), "--provider", "cpu", "--sort-into", str(dest), *extra])


def test_moving_twice_with_dest_as_source_leaves_sorted_files_alone(colour_model: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "photos"
    original = _photos(folder)
    assert _sort_cli(colour_model, folder, folder, "--move") == 0
    after_first = {p.relative_to(folder): p.read_bytes() for p in _left_in(folder)}
    assert len(after_first) == 4 and all(len(p.parts) == 2 for p in after_first)
    assert _sort_cli(colour_model, folder, folder, "--move") == 0  # run again: nothing to do
    assert {p.relative_to(folder): p.read_bytes() for p in _left_in(folder)} == after_first
    capsys.readouterr()
    code, lines = _undo_cli(capsys, folder)
    assert code == 0, lines
    assert _contents(sorted(folder.glob("*.png"))) == original


def test_copying_into_dest_inside_the_source_never_copies_dest_again(colour_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _photos(folder)
    dest = folder / "sorted"
    for _ in range(2):
        assert _sort_cli(colour_model, folder, dest) == 0
    sources = [
        json.loads(line)["src"]
        for log in dest.glob(f"{LOG_PREFIX}*.jsonl")
        for line in log.read_text().splitlines()
        if json.loads(line).get("event") == "done"
    ]
    assert len(sources) == 8 and not [s for s in sources if Path(s).is_relative_to(dest)]
    assert len(_left_in(dest)) == 8  # each photo copied once per run, no copies of copies
