"""The batch engine: slim results, broken files, cancel, resume state, exports."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import onnx_factory
import pytest

from desktop.core.batch import BatchProgress, BatchResult, classify_paths, run_batch
from desktop.core.classifier import Classifier
from desktop.core.exporters import CSV, JSON, ExportContext
from desktop.core.model import load_model
from desktop.core.results_io import BatchState


def make_folder(folder: Path, write_png) -> Path:
    """Three good images (nested) and three broken ones, plus a non-image file."""
    write_png("red.png", onnx_factory.mostly((240, 10, 10)), folder)
    write_png("nested/green.png", onnx_factory.mostly((10, 240, 10)), folder)
    write_png("nested/deeper/blue.png", onnx_factory.mostly((10, 10, 240)), folder)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("I am not an image")
    full = (folder / "red.png").read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 3])
    (folder / "notes.txt").write_text("ignored")
    return folder


class SlowClassifier(Classifier):
    """Sleeps per batch so a test can cancel mid-run."""

    def __init__(self, model, delay: float = 0.05) -> None:
        super().__init__(model)
        self.delay = delay
        self.calls = 0

    def classify_batch(self, images, paths=None, top_k=None, **kwargs):
        self.calls += 1
        time.sleep(self.delay)
        return super().classify_batch(images, paths, top_k, **kwargs)


@pytest.fixture(scope="module")
def classifier(colour_model: Path) -> Classifier:
    return Classifier(load_model(colour_model, provider="cpu"))


@pytest.fixture
def folder(tmp_path: Path, write_png) -> Path:
    return make_folder(tmp_path / "photos", write_png)


def _flat(batches) -> list[BatchResult]:
    return [result for batch in batches for result in batch]


def test_good_and_broken_files(classifier: Classifier, folder: Path) -> None:
    seen: list[BatchProgress] = []
    results = _flat(run_batch(classifier, [folder], batch_size=2, progress=seen.append))
    by_name = {r.path.name: r for r in results}
    assert set(by_name) == {"red.png", "green.png", "blue.png", "empty.jpg", "text.jpg", "truncated.png"}
    assert by_name["red.png"].label == "red" and by_name["blue.png"].label == "blue"
    assert by_name["green.png"].confidence == pytest.approx(by_name["green.png"].top_k[0][1])
    assert len(by_name["red.png"].top_k) == 3
    assert "empty" in by_name["empty.jpg"].error
    for name in ("text.jpg", "truncated.png"):
        assert by_name[name].error and by_name[name].label is None and by_name[name].top_k == ()
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == 6
    assert seen[-1].images_per_second > 0 and seen[-1].eta_s == 0
    assert not hasattr(by_name["red.png"], "image")  # nothing heavy is kept


def test_order_matches_classify_paths(classifier: Classifier, folder: Path) -> None:
    slim = [(r.path, r.label) for r in _flat(run_batch(classifier, [folder], batch_size=4))]
    full = [(p.path, p.top_label) for p in classify_paths(classifier, [folder], batch_size=3)]
    assert slim == full


def test_cancel_keeps_partial_results(colour_model: Path, tmp_path: Path, write_png) -> None:
    for i in range(40):
        write_png(f"img{i:02d}.png", onnx_factory.solid_image((200, 0, 0), 8, 8), tmp_path / "many")
    slow = SlowClassifier(load_model(colour_model, provider="cpu"))
    cancel = threading.Event()
    got: list[BatchResult] = []
    for batch in run_batch(slow, [tmp_path / "many"], batch_size=4, cancel=cancel, workers=2):
        got.extend(batch)
        if len(got) >= 8:
            cancel.set()
    assert 8 <= len(got) < 40 and all(r.ok for r in got)
    assert [r.path.name for r in got] == [f"img{i:02d}.png" for i in range(len(got))]  # in order, no gaps
    # Stopped after the chunks already in flight (two per worker), not at the end of the folder.
    assert slow.calls <= len(got) // 4 + 4


def test_skip_finished_files(classifier: Classifier, folder: Path) -> None:
    skip = {str(folder / "red.png"), str(folder / "nested" / "green.png")}
    names = {r.path.name for r in _flat(run_batch(classifier, [folder], skip=skip))}
    assert names == {"blue.png", "empty.jpg", "text.jpg", "truncated.png"}


def test_state_round_trip_and_keying(classifier: Classifier, folder: Path, tmp_path: Path, colour_model: Path) -> None:
    state_dir = tmp_path / "state"
    state = BatchState.load(state_dir, folder, colour_model)
    assert state.finished == {}
    state.add(_flat(run_batch(classifier, [folder])))
    state.save()
    again = BatchState.load(state_dir, folder, colour_model)
    assert set(again.finished) == {
        str(folder / "red.png"),
        str(folder / "nested/green.png"),
        str(folder / "nested/deeper/blue.png"),
    }  # errors are retried
    assert again.finished[str(folder / "red.png")].label == "red"
    other = tmp_path / "other.onnx"
    other.write_bytes(colour_model.read_bytes())
    assert BatchState.load(state_dir, folder, other).finished == {}  # another model: no resume
    again.file.write_text("{not json")
    assert BatchState.load(state_dir, folder, colour_model).finished == {}  # damaged: start over
    again.clear()
    assert not again.file.exists()


def test_exports(classifier: Classifier, folder: Path, tmp_path: Path) -> None:
    results = _flat(run_batch(classifier, [folder]))
    CSV.write(tmp_path / "out" / "r.csv", results, ExportContext())
    JSON.write(tmp_path / "out" / "r.json", results, ExportContext(model="colours.onnx"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "r.csv").read_text())))
    assert [r["path"] for r in rows] == [str(r.path) for r in results]
    red = next(r for r in rows if r["path"].endswith("red.png"))
    assert red["label"] == "red" and json.loads(red["top_k"])[0][0] == "red" and red["error"] == ""
    document = json.loads((tmp_path / "out" / "r.json").read_text())
    assert document["model"] == "colours.onnx" and document["count"] == 6 and document["failed"] == 3
    blue = next(r for r in document["results"] if r["path"].endswith("blue.png"))
    assert blue["label"] == "blue" and blue["error"] is None and 0 < blue["confidence"] <= 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.csv", "r.json"]  # no temp files


def test_closing_a_run_early_stops_its_workers(classifier: Classifier, tmp_path: Path, write_png) -> None:
    for i in range(40):
        write_png(f"img{i:02d}.png", onnx_factory.solid_image((200, 0, 0), 8, 8), tmp_path / "many")
    for run in (
        run_batch(classifier, [tmp_path / "many"], batch_size=1, workers=2),
        classify_paths(classifier, [tmp_path / "many"], batch_size=1),
    ):
        next(run)
        assert any(t.name.startswith("classify") for t in threading.enumerate())
        run.close()  # what a consumer that stops reading does
        assert not [t.name for t in threading.enumerate() if t.name.startswith("classify")]
