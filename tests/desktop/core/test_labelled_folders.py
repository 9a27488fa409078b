"""Labelled folders: class-named sub-folders give each file a true class, and a run its accuracy."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import onnx_factory
import pytest

from desktop.core.batch import BatchResult, run_batch
from desktop.core.classifier import Classifier
from desktop.core.exporters import CSV, JSON, ExportContext
from desktop.core.labelled import AccuracyTally, FolderLabels, detect_labelled_folder, match_folder_names
from desktop.core.model import load_model
from desktop.core.results_io import TRUE_LABEL_COLUMN, results_to_json
from desktop.core.sorting import safe_folder_name

LABELS = onnx_factory.COLOUR_LABELS  # red, green, blue
RED, GREEN, BLUE = ((230, 10, 10), (10, 230, 10), (10, 10, 230))


def make_labelled_folder(root: Path, write_png) -> Path:
    """Class folders spelt as people do, one mistake planted, plus files with no true class.

    Red/ holds two red images and a green one (the model will call it green: a mistake
    by construction); GREEN/ one green; blue/ one blue and a broken file; _unsure/ and
    the root one image each, which belong to no class.
    """
    write_png("Red/a.png", onnx_factory.mostly(RED), root)
    write_png("Red/deeper/b.png", onnx_factory.mostly(RED), root)
    write_png("Red/c.png", onnx_factory.mostly(GREEN), root)
    write_png("GREEN/d.png", onnx_factory.mostly(GREEN), root)
    write_png("blue/e.png", onnx_factory.mostly(BLUE), root)
    (root / "blue" / "broken.jpg").write_text("not an image")
    write_png("_unsure/f.png", onnx_factory.mostly(BLUE), root)
    write_png("g.png", onnx_factory.mostly(RED), root)
    return root


@pytest.fixture(scope="module")
def classifier(colour_model: Path) -> Classifier:
    return Classifier(load_model(colour_model, provider="cpu"))


def _results(classifier: Classifier, folder: Path) -> list[BatchResult]:
    return [r for batch in run_batch(classifier, [folder], batch_size=2) for r in batch]


def test_folder_names_match_classes_loosely_but_never_ambiguously() -> None:
    labels = ["tabby cat", "tiger cat", "Cat", "cat", "a:b"]
    matched = match_folder_names(
        ["Tabby_Cat", "tiger-cat", "TIGER  CAT", "cat", "CAT", "dogs", "2023", safe_folder_name("a:b")], labels
    )
    assert matched["Tabby_Cat"] == "tabby cat" and matched["tiger-cat"] == matched["TIGER  CAT"] == "tiger cat"
    assert matched["cat"] == "cat"  # the exact spelling decides between "Cat" and "cat"
    assert "CAT" not in matched  # could be either: no match rather than a guess
    assert matched[safe_folder_name("a:b")] == "a:b"  # a folder "Sort into folders" wrote
    assert "dogs" not in matched and "2023" not in matched


def test_detection_needs_two_class_folders_with_images(tmp_path: Path, write_png) -> None:
    root = make_labelled_folder(tmp_path / "photos", write_png)
    labels = detect_labelled_folder(root, LABELS)
    assert labels is not None and labels.folders == {"Red": "red", "GREEN": "green", "blue": "blue"}
    assert labels.true_label(root / "Red" / "deeper" / "b.png") == "red"
    assert labels.true_label(root / "g.png") is None and labels.true_label(root / "_unsure" / "f.png") is None
    assert labels.true_label(tmp_path / "elsewhere" / "Red" / "x.png") is None

    one = tmp_path / "one"
    write_png("red/a.png", onnx_factory.mostly(RED), one)
    write_png("2023/b.png", onnx_factory.mostly(RED), one)
    assert detect_labelled_folder(one, LABELS) is None  # one matching name is a coincidence
    (one / "green").mkdir()
    assert detect_labelled_folder(one, LABELS) is None  # an empty class folder labels nothing
    write_png("green/deep/c.png", onnx_factory.mostly(GREEN), one)
    assert detect_labelled_folder(one, LABELS) is not None
    assert detect_labelled_folder(tmp_path / "missing", LABELS) is None


def test_running_accuracy_and_per_class_counts(classifier: Classifier, tmp_path: Path, write_png) -> None:
    root = make_labelled_folder(tmp_path / "photos", write_png)
    labels = detect_labelled_folder(root, LABELS)
    results = _results(classifier, root)
    tally = AccuracyTally(labels)
    seen = []
    for result in results:  # as results arrive, one at a time
        tally.add([result])
        seen.append(tally.accuracy)
    assert seen[-1] == pytest.approx(4 / 5)
    assert tally.images == 5 and tally.correct == 4 and tally.unreadable == 1 and tally.unlabelled == 2
    red, green, blue = (tally.classes[name] for name in LABELS)
    assert (red.images, red.correct, red.top_confusion) == (3, 2, ("green", 1))
    assert (green.images, green.correct, green.top_confusion) == (1, 1, None)
    assert (blue.images, blue.correct, blue.unreadable) == (1, 1, 1)
    assert red.accuracy == pytest.approx(2 / 3)
    summary = tally.summary()
    assert "80.0 %" in summary and "4 of 5" in summary and "1 unreadable" in summary
    assert "2 not in a class folder" in summary
    tally.add(results)  # the same files again (a resumed run re-adds its rows): counted once
    assert tally.images == 5 and tally.unlabelled == 2


def test_exports_carry_the_true_class(classifier: Classifier, tmp_path: Path, write_png) -> None:
    root = make_labelled_folder(tmp_path / "photos", write_png)
    labels = detect_labelled_folder(root, LABELS)
    results = _results(classifier, root)
    CSV.write(tmp_path / "r.csv", results, ExportContext(truth=labels))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert list(rows[0]) == [
        "path",
        "label",
        "confidence",
        "top_k",
        "error",
        "unknown",
        "unknown_score",
        TRUE_LABEL_COLUMN,
    ]
    truth = {Path(r["path"]).name: r[TRUE_LABEL_COLUMN] for r in rows}
    assert truth == {
        "a.png": "red",
        "b.png": "red",
        "c.png": "red",
        "d.png": "green",
        "e.png": "blue",
        "broken.jpg": "blue",
        "f.png": "",
        "g.png": "",
    }

    JSON.write(tmp_path / "r.json", results, ExportContext("colours.onnx", labels))
    document = json.loads((tmp_path / "r.json").read_text())
    assert {Path(r["path"]).name: r[TRUE_LABEL_COLUMN] for r in document["results"]}["g.png"] is None
    accuracy = document["accuracy"]
    assert accuracy["accuracy"] == pytest.approx(0.8) and accuracy["unlabelled"] == 2
    red = next(c for c in accuracy["per_class"] if c["label"] == "red")
    assert red["most_confused_with"] == "green" and red["images"] == 3

    CSV.write(tmp_path / "plain.csv", results, ExportContext())  # an unlabelled run keeps the usual five columns
    assert (tmp_path / "plain.csv").read_text().splitlines()[
        0
    ] == "path,label,confidence,top_k,error,unknown,unknown_score"
    assert "accuracy" not in json.loads(results_to_json(results))


def test_folder_labels_are_plain_data(tmp_path: Path) -> None:
    labels = FolderLabels(tmp_path, {"Cats": "cat", "dogs": "dog"})
    assert labels.classes == ["cat", "dog"]
    assert labels.true_label(tmp_path / "Cats") is None  # the folder itself is not a file in it
