"""desktop.core.dataset_edits: move, exclude and add images, journaled, undone exactly, nothing lost."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.core import dataset_edits, sorting
from desktop.core.dataset_edits import JOURNAL_NAME, DatasetEditError, DatasetEdits, excluded_folder, read_journal


def _image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (10, 10, 3), dtype=np.uint8))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    for seed, name in enumerate(("cat/a.png", "cat/b.png", "cat/sub/c.png", "dog/a.png", "dog/d.png")):
        _image(root / name, seed)
    return root


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file and folder below `root` with its bytes (None for a folder)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def test_move_to_another_class_and_undo(dataset: Path) -> None:
    before = _tree(dataset)
    edits = DatasetEdits(dataset)
    moved = edits.move(dataset / "cat" / "b.png", "dog")
    assert moved == dataset / "dog" / "b.png" and moved.exists() and not (dataset / "cat" / "b.png").exists()
    assert [e.op for e in edits.history()] == ["move"]
    report = edits.undo_last()
    assert report.problems == [] and len(report.undone) == 1 and "moved" in report.lines()[0]
    assert _tree(dataset) == before and edits.history() == []


def test_a_move_never_overwrites(dataset: Path) -> None:
    taken = (dataset / "dog" / "a.png").read_bytes()
    moved = DatasetEdits(dataset).move(dataset / "cat" / "a.png", "dog")
    assert moved.name == "a (1).png" and (dataset / "dog" / "a.png").read_bytes() == taken


def test_exclude_moves_aside_outside_the_dataset_and_undo(dataset: Path) -> None:
    before = _tree(dataset)
    edits = DatasetEdits(dataset)
    aside = edits.exclude(dataset / "cat" / "sub" / "c.png")
    assert aside == excluded_folder(dataset) / "cat" / "c.png" and aside.exists()
    assert aside.parent.parent.parent == dataset.parent  # a sibling, so training never sees it as a class
    assert (excluded_folder(dataset) / JOURNAL_NAME).exists()
    assert edits.undo_all().problems == []
    assert _tree(dataset) == before


def test_add_copies_without_overwriting_and_undo_removes_the_copies(dataset: Path, tmp_path: Path) -> None:
    before = _tree(dataset)
    new = [_image(tmp_path / "camera" / "a.png", 50), _image(tmp_path / "camera" / "e.png", 51)]
    edits = DatasetEdits(dataset)
    added = edits.add_images(new, "cat")
    assert [p.name for p in added] == ["a (1).png", "e.png"]
    assert added[0].read_bytes() == new[0].read_bytes() and all(p.exists() for p in new)  # copied
    fresh = edits.add_images([new[0]], "bird")  # a new class folder
    assert fresh == [dataset / "bird" / "a.png"]
    report = edits.undo_all()
    assert len(report.undone) == 3 and report.problems == []
    assert _tree(dataset) == before  # the new class folder is gone too
    assert all(p.exists() for p in new)


def test_undo_all_restores_a_mixed_history_exactly(dataset: Path, tmp_path: Path) -> None:
    before = _tree(dataset)
    edits = DatasetEdits(dataset)
    first = edits.move(dataset / "cat" / "a.png", "dog")
    edits.move(first, "cat")  # moved back and forth: walks back along its own path
    edits.exclude(dataset / "dog" / "d.png")
    edits.add_images([_image(tmp_path / "x.png", 9)], "dog")
    edits.move(dataset / "dog" / "a.png", "cat")
    assert len(edits.history()) == 5
    report = edits.undo_all()
    assert len(report.undone) == 5 and report.problems == [], report.lines()
    assert _tree(dataset) == before and edits.history() == []
    assert edits.undo_all().summary() == "nothing to undo"


def test_undo_reports_a_file_gone_and_a_place_taken(dataset: Path) -> None:
    edits = DatasetEdits(dataset)
    moved = edits.move(dataset / "cat" / "a.png", "dog")
    aside = edits.exclude(dataset / "cat" / "b.png")
    aside.unlink()  # the user deleted the excluded file
    _image(dataset / "cat" / "a.png", 99)  # and put another file where the moved one was
    report = edits.undo_all()
    assert report.undone == [] and len(report.problems) == 2
    problems = " | ".join(text for _, text in report.problems)
    assert "file gone" in problems and "is taken by another file" in problems
    assert moved.exists()  # left alone, never overwritten
    assert [e.op for e in edits.history()] == ["move"]  # the gone one is retired, the taken one waits


def test_an_added_copy_changed_since_is_left_alone(dataset: Path, tmp_path: Path) -> None:
    edits = DatasetEdits(dataset)
    (added,) = edits.add_images([_image(tmp_path / "n.png", 5)], "cat")
    added.write_bytes(b"edited by the user")
    report = edits.undo_last()
    assert "changed since it was added" in report.problems[0][1] and added.exists()


def test_a_refused_move_raises_and_loses_nothing(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only folder refuses the rename (patched: chmod does not stop root)."""
    before = _tree(dataset)

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(src))

    monkeypatch.setattr(sorting, "_rename_no_replace", refuse)
    with pytest.raises(DatasetEditError, match="permission denied.*left where it was"):
        DatasetEdits(dataset).move(dataset / "cat" / "a.png", "bird")
    assert _tree(dataset) == before  # no file lost, no "bird" folder left behind
    assert DatasetEdits(dataset).history() == []


def test_a_move_failing_half_way_across_disks_leaves_the_file(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied to the other disk, then the source cannot be removed: the copy goes, the file stays."""
    before = _tree(dataset)
    monkeypatch.setattr(sorting, "_same_device", lambda src, folder: False)
    real_unlink = Path.unlink

    def read_only_source(self: Path, missing_ok: bool = False) -> None:
        if self == dataset / "cat" / "a.png":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", read_only_source)
    with pytest.raises(DatasetEditError, match="the disk is read-only"):
        DatasetEdits(dataset).move(dataset / "cat" / "a.png", "dog")
    assert _tree(dataset) == before


def test_a_full_disk_on_add_is_a_clear_error(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _tree(dataset)

    def full(src, tmp):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(sorting, "_copy_to_temp", full)
    with pytest.raises(DatasetEditError, match="the disk is full"):
        DatasetEdits(dataset).add_images([_image(tmp_path / "n.png", 3)], "cat")
    assert _tree(dataset) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="chmod does not stop root")
def test_a_really_read_only_class_folder(dataset: Path) -> None:
    before = _tree(dataset)
    (dataset / "cat").chmod(0o555)
    try:
        with pytest.raises(DatasetEditError, match="permission denied"):
            DatasetEdits(dataset).move(dataset / "cat" / "a.png", "dog")
    finally:
        (dataset / "cat").chmod(0o755)
    assert _tree(dataset) == before


def test_a_crash_before_the_done_line_is_still_undone(dataset: Path) -> None:
    before = _tree(dataset)
    edits = DatasetEdits(dataset)
    edits.move(dataset / "cat" / "a.png", "dog")
    journal = edits.journal_path
    lines = journal.read_text(encoding="utf-8").splitlines()
    journal.write_text("\n".join(lines[:-1]) + '\n{"event": "do', encoding="utf-8")  # done line torn
    assert len(read_journal(journal)[0]) == 1
    assert edits.undo_all().problems == [] and _tree(dataset) == before


def test_what_is_refused(dataset: Path, tmp_path: Path) -> None:
    edits = DatasetEdits(dataset)
    outside = _image(tmp_path / "elsewhere.png", 1)
    with pytest.raises(DatasetEditError, match="not inside the dataset"):
        edits.move(outside, "cat")
    with pytest.raises(DatasetEditError, match="already in class"):
        edits.move(dataset / "cat" / "a.png", "cat")
    with pytest.raises(DatasetEditError, match="cannot be a class folder name"):
        edits.move(dataset / "cat" / "a.png", "../evil")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetEditError, match="not an image file"):
        edits.add_images([tmp_path / "notes.txt"], "cat")
    # a look-alike name goes to the existing class, never makes a second one training refuses
    assert edits.move(dataset / "cat" / "a.png", "DOG").parent == dataset / "dog"


def test_the_journal_outside_the_dataset_is_not_trusted(dataset: Path, tmp_path: Path) -> None:
    edits = DatasetEdits(dataset)
    victim = _image(tmp_path / "victim.png", 4)
    copy = tmp_path / "copy.png"
    shutil.copy(victim, copy)
    edits.excluded.mkdir()
    line = {"event": "begin", "op": "add", "src": str(copy), "dst": str(victim)}
    edits.journal_path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    report = edits.undo_all()
    assert victim.exists() and "left alone" in report.problems[0][1]
    assert dataset_edits.excluded_folder(dataset).name == "pets.excluded"
