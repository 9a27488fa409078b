"""desktop.core.dataset_scan: the Train tab's view of a dataset folder, by training's rules."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from convnet_common.class_folders import scan_class_folders
from desktop.core.dataset_scan import IMBALANCE_WARN_RATIO, ScanCancelled, scan_dataset


def _image(path: Path, seed: int) -> Path:
    """A small PNG whose pixels differ by `seed` (so no two are byte copies unless copied)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
    return path


def _dataset(root: Path, counts: dict[str, int]) -> Path:
    seed = 0
    for name, count in counts.items():
        for i in range(count):
            seed += 1
            _image(root / name / f"{name}_{i:03d}.png", seed)
    return root


def test_counts_samples_and_no_warnings_for_a_good_folder(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "pets", {"cat": 12, "dog": 10})
    _image(root / "dog" / "nested" / "deep.png", 999)
    scan = scan_dataset(root)
    assert scan.counts() == {"cat": 12, "dog": 11}
    assert scan.total_images == 23 and scan.warnings == [] and scan.trainable
    assert len(scan.classes[0].samples) == 6 and all(p.exists() for p in scan.classes[0].samples)


def test_counts_match_training(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 3, "b": 4})
    (root / "a" / "bad.jpg").write_bytes(b"not a jpeg at all")
    assert scan_dataset(root).counts() == scan_class_folders(root).counts()


def test_an_unreadable_file_is_listed_with_the_decoders_reason(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 10, "b": 10})
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "b" / "notes.txt").write_text("a note")
    scan = scan_dataset(root)
    assert scan.unreadable == [(root / "a" / "empty.jpg", "the file is empty (0 bytes)")]
    assert scan.classes[0].unreadable == 1 and scan.counts()["a"] == 10
    (warning,) = scan.warnings_of("unreadable")
    assert "empty.jpg" in warning.message and "the file is empty (0 bytes)" in warning.message
    (others,) = scan.warnings_of("not_images")
    assert "notes.txt" in others.message and scan.not_images == [root / "b" / "notes.txt"]
    # training skips the same file with the same words
    assert scan_class_folders(root).skipped == [(str(root / "a" / "empty.jpg"), "the file is empty (0 bytes)")]


def test_a_duplicate_in_one_class_and_a_label_conflict_across_classes(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"cat": 10, "dog": 10})
    shutil.copy(root / "cat" / "cat_000.png", root / "cat" / "again.png")
    shutil.copy(root / "cat" / "cat_001.png", root / "dog" / "which_is_it.png")
    scan = scan_dataset(root)
    assert len(scan.duplicates) == 2
    (conflict,) = scan.label_conflicts
    assert set(conflict.paths) == {root / "cat" / "cat_001.png", root / "dog" / "which_is_it.png"}
    assert set(conflict.classes) == {"cat", "dog"}
    (same_class,) = scan.warnings_of("duplicate")
    assert "'cat'" in same_class.message and set(same_class.paths) == {
        root / "cat" / "cat_000.png",
        root / "cat" / "again.png",
    }
    assert len(scan.warnings_of("label_conflict")) == 1


def test_files_of_equal_size_but_different_content_are_not_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for name, byte in (("a", b"\x01"), ("b", b"\x02")):
        (root / name).mkdir(parents=True)
        (root / name / "x.jpg").write_bytes(byte * 100)  # same size, unreadable: not hashed as images
    root2 = _dataset(tmp_path / "e", {"a": 2, "b": 2})
    assert scan_dataset(root).duplicates == [] and scan_dataset(root2).duplicates == []


def test_imbalance_names_the_small_classes_and_the_ratio(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"big": 40, "fine": 20, "small": 10})
    scan = scan_dataset(root)
    (warning,) = scan.warnings_of("imbalance")
    assert 40 > IMBALANCE_WARN_RATIO * 10
    assert "'small' 10 (4.0 to 1)" in warning.message and "'fine'" not in warning.message
    assert "'big' has 40" in warning.message and scan.trainable


def test_too_small_and_few(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 1, "b": 4, "c": 12})
    scan = scan_dataset(root)
    (too_small,) = scan.warnings_of("too_small")
    assert "'a'" in too_small.message and "validation" in too_small.message
    (few,) = scan.warnings_of("few")
    assert "'b'" in few.message


def test_an_empty_folder_and_a_single_class(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    scan = scan_dataset(tmp_path / "empty")
    assert scan.classes == [] and [w.kind for w in scan.warnings] == ["empty"] and not scan.trainable
    root = _dataset(tmp_path / "one", {"only": 12})
    _image(root / "loose.png", 77)
    scan = scan_dataset(root)
    assert scan.warnings_of("one_class") and not scan.trainable
    assert "loose.png" in scan.warnings_of("loose_files")[0].message
    (root / "none").mkdir()
    assert scan_dataset(root).warnings_of("empty_class")


def test_look_alike_class_names_are_a_blocking_warning(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"Cat": 10, "cat": 10})
    scan = scan_dataset(root)
    (warning,) = scan.warnings_of("look_alike")
    assert "'Cat' and 'cat'" in warning.message and warning.blocks_training


def test_hidden_folders_are_not_classes_and_nothing_is_modified(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 10, "b": 10, ".thumbs": 3})
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    assert [c.name for c in scan_dataset(root).classes] == ["a", "b"]
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before


def test_progress_is_reported_and_cancel_stops(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 5, "b": 5})
    calls: list[tuple[int, int]] = []
    scan_dataset(root, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 0) and calls[-1] == (10, 10) and len(calls) == 11
    stop = threading.Event()

    def halfway(done: int, total: int) -> None:
        if done == 3:
            stop.set()

    with pytest.raises(ScanCancelled):
        scan_dataset(root, progress=halfway, cancel=stop)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_dataset(tmp_path / "nope")
