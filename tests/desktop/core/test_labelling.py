"""desktop.core.labelling and desktop.core.capture (no Qt): least certain first, decisions, commit and undo,
unreadable files, model classes that differ from the dataset's, and the frame recorder."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.core import capture
from desktop.core.capture import FrameRecorder, choose_class_folder
from desktop.core.classifier import Classifier
from desktop.core.dataset_edits import DatasetEdits
from desktop.core.labelling import (
    ACCEPTED,
    CORRECTED,
    SKIPPED,
    LabellingError,
    LabellingSession,
    Suggestion,
    class_name_problem,
    classify_folder,
    dataset_classes,
)
from desktop.core.model import load_model

# RGB colours and what the colour model makes of them: pure ones are sure, mixed ones not.
SURE_RED, SURE_GREEN = (230, 0, 0), (0, 220, 0)
RED_OR_GREEN = (120, 110, 0)  # margin about 0.12
MOSTLY_GREEN = (60, 200, 0)  # margin about 0.999


def _png(path: Path, rgb: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((20, 20, 3), rgb[::-1], np.uint8))
    return path


@pytest.fixture(scope="module")
def classifier(colour_model: Path) -> Classifier:
    return Classifier(load_model(colour_model, provider="cpu"))


@pytest.fixture
def new_images(tmp_path: Path) -> Path:
    folder = tmp_path / "new"
    _png(folder / "a-sure-red.png", SURE_RED)
    _png(folder / "b-hesitant.png", RED_OR_GREEN)
    _png(folder / "c-sure-green.png", SURE_GREEN)
    _png(folder / "sub" / "d-mostly-green.png", MOSTLY_GREEN)
    (folder / "e-broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "colours"
    _png(root / "red" / "r1.png", SURE_RED)
    _png(root / "Green" / "g1.png", SURE_GREEN)  # the model says "green": matched regardless of case
    return root


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def test_least_certain_first_and_unreadable_files_listed(classifier: Classifier, new_images: Path) -> None:
    items, unreadable = classify_folder(classifier, new_images)
    assert [item.path.name for item in items][0] == "b-hesitant.png"
    margins = [item.margin for item in items]
    assert margins == sorted(margins)
    assert {item.path.name for item in items} == {
        "a-sure-red.png",
        "b-hesitant.png",
        "c-sure-green.png",
        "d-mostly-green.png",
    }
    assert items[0].label == "red" and 0 < items[0].margin < 0.5 and len(items[0].top_k) == 3
    assert [(path.name, bool(reason)) for path, reason in unreadable] == [("e-broken.jpg", True)]


def test_margin_orders_where_top_one_confidence_would_not() -> None:
    """Top-1 0.40 against 0.38 is less certain than 0.45 against 0.05 (the reason margin is used)."""
    from desktop.core.labelling import uncertainty_key

    clear = Suggestion(Path("clear.png"), "a", 0.40, 0.35, (("a", 0.40), ("b", 0.05)))
    toss = Suggestion(Path("toss.png"), "a", 0.45, 0.07, (("a", 0.45), ("b", 0.38)))
    assert [s.path.name for s in sorted([clear, toss], key=uncertainty_key)] == ["toss.png", "clear.png"]


def test_cancel_keeps_what_was_classified(classifier: Classifier, new_images: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    items, unreadable = classify_folder(classifier, new_images, cancel=cancel)
    assert len(items) + len(unreadable) <= 5


def test_decisions_commit_copies_and_undo_restores(classifier: Classifier, new_images: Path, dataset: Path) -> None:
    before = _tree(dataset)
    items, unreadable = classify_folder(classifier, new_images)
    session = LabellingSession(items, dataset_classes(dataset), classifier.model.info.labels, unreadable)
    assert session.classes == ["Green", "red"]
    names = [item.path.name for item in items]
    hesitant, sure_red, sure_green = (names.index(n) for n in ("b-hesitant.png", "a-sure-red.png", "c-sure-green.png"))
    assert session.accept(sure_red).kind == ACCEPTED and session.decision(sure_red).label == "red"
    assert session.accept(sure_green).label == "Green"  # model class "green", folder "Green"
    assert session.correct(hesitant, "Green").kind == CORRECTED
    assert session.skip(names.index("d-mostly-green.png")).kind == SKIPPED
    assert session.next_undecided() is None
    assert session.pending() == {"Green": sorted([hesitant, sure_green]), "red": [sure_red]}

    report = session.commit(dataset)
    assert report.added_count == 3 and not report.failed and report.skipped == 1
    assert "Added 3 image(s)" in report.summary() and "undone" in report.summary()
    assert (dataset / "red" / "a-sure-red.png").read_bytes() == (new_images / "a-sure-red.png").read_bytes()
    assert {p.name for p in (dataset / "Green").iterdir()} == {"g1.png", "b-hesitant.png", "c-sure-green.png"}
    assert (new_images / "a-sure-red.png").exists()  # copied, not moved
    assert session.commit(dataset).added_count == 0  # nothing is copied twice

    undo = DatasetEdits(dataset).undo_all()
    assert not undo.problems and len(undo.undone) == 3
    assert _tree(dataset) == before


def test_commit_never_overwrites(classifier: Classifier, new_images: Path, dataset: Path) -> None:
    taken = _png(dataset / "red" / "a-sure-red.png", (1, 2, 3)).read_bytes()
    items, _ = classify_folder(classifier, new_images)
    session = LabellingSession(items, dataset_classes(dataset))
    session.accept([item.path.name for item in items].index("a-sure-red.png"))
    report = session.commit(dataset)
    assert [p.name for p in report.added["red"]] == ["a-sure-red (1).png"]
    assert (dataset / "red" / "a-sure-red.png").read_bytes() == taken


def test_an_image_gone_before_commit_is_reported_and_the_rest_added(
    classifier: Classifier, new_images: Path, dataset: Path
) -> None:
    items, _ = classify_folder(classifier, new_images)
    session = LabellingSession(items, dataset_classes(dataset))
    for index in range(len(items)):
        session.correct(index, "red")
    os.unlink(new_images / "c-sure-green.png")
    report = session.commit(dataset)
    assert report.added_count == 3
    assert [(path.name, "not a file" in why) for path, why in report.failed] == [("c-sure-green.png", True)]


def test_model_class_without_a_folder(classifier: Classifier, new_images: Path, tmp_path: Path) -> None:
    only_red = tmp_path / "only-red"
    _png(only_red / "red" / "r.png", SURE_RED)
    items, _ = classify_folder(classifier, new_images)
    session = LabellingSession(items, dataset_classes(only_red), classifier.model.info.labels)
    assert session.classes == ["red"] and session.missing_model_classes() == ["green", "blue"]
    green = [item.path.name for item in items].index("c-sure-green.png")
    with pytest.raises(LabellingError, match="no folder"):
        session.accept(green)
    with pytest.raises(LabellingError, match="not a class"):
        session.correct(green, "green")
    with pytest.raises(LabellingError, match="letter case"):
        session.add_class("RED")
    session.add_class("green")  # on request: the folder is made on commit
    assert session.accept(green).label == "green"
    report = session.commit(only_red)
    assert (only_red / "green" / "c-sure-green.png").exists() and report.added == {
        "green": [only_red / "green" / "c-sure-green.png"]
    }
    DatasetEdits(only_red).undo_all()
    assert not (only_red / "green").exists()  # the folder the commit made goes with undo


@pytest.mark.parametrize(
    "name, problem",
    [
        ("", "empty"),
        (" cat", "space"),
        (".hidden", "start with '.'"),
        ("a/b", "cannot contain"),
        ("what?", "cannot contain"),
        ("CON", "Windows"),
        ("Cat", "letter case"),
        ("cafe\u0301", "normalisation"),
    ],
)
def test_new_class_names_follow_the_folder_rules(name: str, problem: str) -> None:
    assert problem in class_name_problem(name, ["cat", "caf\u00e9"])


def test_existing_and_fresh_names_are_fine() -> None:
    assert class_name_problem("cat", ["cat"]) is None and class_name_problem("hot dog", ["cat"]) is None


# -- capture: the recorder ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _wait(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_recorder_keeps_the_chosen_rate_and_never_overwrites(tmp_path: Path) -> None:
    folder = choose_class_folder(tmp_path, "cat")
    clock = Clock()
    recorder = FrameRecorder(folder, 5, clock=clock)
    recorder.start()
    frame = np.full((24, 32, 3), (10, 200, 30), np.uint8)
    kept = 0
    for _ in range(60):  # two seconds of a 30 fps camera
        kept += recorder.offer(frame)
        _wait(lambda: recorder._mailbox._item is None)  # the writer keeps up (no frame replaced)
        clock.now += 1 / 30
    assert recorder.stop()
    assert kept == 10 and recorder.count == 10
    files = sorted(folder.iterdir())
    assert len(files) == 10 and all(f.suffix == ".png" for f in files) and len({f.name for f in files}) == 10
    assert cv2.imread(str(files[0]))[0, 0].tolist() == [30, 200, 10]  # RGB frame, BGR file
    again = FrameRecorder(folder, 10, fmt="jpg")
    again.start()
    assert again.offer(frame)
    again.stop()
    assert again.count == 1 and again.written[0].suffix == ".jpg" and len(list(folder.iterdir())) == 11


def test_recorder_stops_with_a_reason_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def read_only_after_two(path, data):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        Path(path).write_bytes(data)

    monkeypatch.setattr(capture, "write_bytes_atomic", read_only_after_two)
    failures: list[str] = []
    clock = Clock()
    recorder = FrameRecorder(tmp_path / "cat", 10, clock=clock, on_failed=failures.append)
    recorder.start()
    for _ in range(5):
        recorder.offer(np.zeros((8, 8, 3), np.uint8))
        _wait(lambda: recorder._mailbox._item is None)
        clock.now += 0.1
    _wait(lambda: failures)
    recorder.stop()
    assert "read-only" in failures[0] and not recorder.recording
    assert recorder.count == 2 and len(list((tmp_path / "cat").iterdir())) == 2  # what was written stays
    assert not recorder.offer(np.zeros((8, 8, 3), np.uint8))


def test_choose_class_folder_refuses_look_alikes(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    assert choose_class_folder(tmp_path, "cat") == tmp_path / "cat"
    with pytest.raises(ValueError, match="letter case"):
        choose_class_folder(tmp_path, "CAT")
