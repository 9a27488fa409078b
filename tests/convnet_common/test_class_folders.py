"""The class-folder rules training and the app share (convnet_common.class_folders)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest

from convnet_common import class_folders as rules


def _image(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))
    return path


def test_classes_are_sorted_visible_folders_and_nested_images_count(tmp_path: Path) -> None:
    _image(tmp_path / "b" / "x.png")
    _image(tmp_path / "a" / "deep" / "deeper" / "y.png")
    _image(tmp_path / ".hidden" / "z.png")
    (tmp_path / "a" / "notes.txt").write_text("hello")
    assert [p.name for p in rules.class_folders(tmp_path)] == ["a", "b"]
    found = rules.walk_class_folder(tmp_path / "a")
    assert [p.name for p in found.images] == ["y.png"] and [p.name for p in found.others] == ["notes.txt"]
    scanned = rules.scan_class_folders(tmp_path)
    assert scanned.counts() == {"a": 1, "b": 1}


def test_unreadable_reason_is_the_decoders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    assert rules.read_problem(tmp_path / "a" / "empty.jpg") == "the file is empty (0 bytes)"
    assert rules.read_problem(_image(tmp_path / "a" / "ok.png")) is None


def test_look_alike_names_are_grouped_and_refused(tmp_path: Path) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert rules.look_alike_groups(["Cat", "cat", "dog", nfc, nfd]) == [["Cat", "cat"], [nfc, nfd]]
    with pytest.raises(rules.DatasetError, match="differ only by letter case"):
        rules.refuse_look_alike_folders(tmp_path, ["Cat", "cat"])


def test_validation_count_follows_the_split_rule() -> None:
    assert rules.validation_count(1, 0.2) == 0  # below MIN_IMAGES_TO_SPLIT: nothing to validate on
    assert rules.validation_count(2, 0.2) == 1
    assert rules.validation_count(100, 0.2) == 20


def test_generic_folder_names_take_the_parents(tmp_path: Path) -> None:
    (tmp_path / "flowers" / "train").mkdir(parents=True)
    assert rules.default_dataset_name(tmp_path / "flowers" / "train") == "flowers"
