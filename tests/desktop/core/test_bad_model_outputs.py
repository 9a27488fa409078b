"""Models whose answers break the contract: refused at load, or an error per image, never a prediction.

A NaN probability used to label every image as class 0 at `nan` confidence, pass a
`--threshold 0.9` sort (`nan < 0.9` is false) and land in the JSON as a bare `NaN`; a
zero-sized map crashed the overlay; a graph that always answers one row loaded and then
failed every batch. The load now runs one and two black images and checks shapes and
values; every later answer is checked again (desktop.core.classifier), since a graph
can answer a black image well and a real one badly.

Each test runs under a wall-clock alarm so a regression that hangs fails the test.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import onnx_factory
import pytest

from desktop.classify_cli import main
from desktop.core.batch import run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import ModelLoadError, load_model

RED, BLUE = (255, 0, 0), (0, 0, 200)  # nan_on_red: NaN where a channel mean is 255


@pytest.fixture(autouse=True)
def _alarm():
    """Fail, rather than hang, if a model run never returns."""

    def expire(*_):
        raise TimeoutError("a hostile-model test ran past 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("nan", "invalid answer for a black test image: .*not finite"),
        ("huge", r"invalid answer .*between 0 and 1; it gave values from 77 to 77"),
        ("negative", r"invalid answer .*between 0 and 1; it gave values from -77 to -77"),
        ("half", r"invalid answer .*must sum to 1; they sum to 0\.5"),
        ("inf_cam", "invalid answer .*activation map is not finite"),
        ("zero_cam", r"output 'cam' must be \[N, h, w, 3\]; it gives \[1, 0, 0, 3\] \(h and w at least 1"),
        ("one_row", r"output 'probabilities' gives 1 rows for a batch of 2 images; it must give one row per image"),
    ],
)
def test_a_model_with_bad_outputs_is_refused_at_load(tmp_path: Path, kind: str, expected: str) -> None:
    path = onnx_factory.save_hostile_output_model(tmp_path / f"{kind}.onnx", kind)
    with pytest.raises(ModelLoadError, match=f"^{kind}.onnx: (model gives an )?{expected}"):
        load_model(path, provider="cpu")


def test_a_bad_answer_for_one_image_is_an_error_for_that_image_only(tmp_path: Path, write_png) -> None:
    """nan_on_red answers black (the load) and blue well and red with NaN."""
    model = load_model(onnx_factory.save_hostile_output_model(tmp_path / "m.onnx", "nan_on_red"), provider="cpu")
    classifier = Classifier(model)
    red = write_png("in/red.png", onnx_factory.solid_image(RED))
    write_png("in/blue.png", onnx_factory.solid_image(BLUE))
    single = classifier.classify_path(red)
    assert not single.ok and single.top_k == [] and "not finite" in single.error
    results = [r for chunk in run_batch(classifier, [red.parent], batch_size=2, workers=1) for r in chunk]
    by_name = {r.path.name: r for r in results}
    assert by_name["blue.png"].ok and by_name["blue.png"].label == "blue"
    assert not by_name["red.png"].ok and by_name["red.png"].confidence is None
    assert "not finite" in by_name["red.png"].error


def test_cli_never_sorts_or_writes_a_nan_answer(tmp_path: Path, write_png, capsys) -> None:
    model = onnx_factory.save_hostile_output_model(tmp_path / "m.onnx", "nan_on_red")
    write_png("in/red.png", onnx_factory.solid_image(RED))
    write_png("in/blue.png", onnx_factory.solid_image(BLUE))
    dest, out_json = tmp_path / "sorted", tmp_path / "out.json"
    code = main(
        [
            str(tmp_path / "in"),
            "--model",
            str(model),
            "--provider",
            "cpu",
            "--json",
            str(out_json),
            "--sort-into",
            str(dest),
            "--threshold",
            "0.1",
        ]
    )
    capsys.readouterr()
    assert code == 1  # one image could not be classified
    text = out_json.read_text()
    assert "NaN" not in text.replace("not finite numbers (NaN", "")
    json.loads(text)
    assert not any(p.name == "red.png" for p in dest.rglob("*") if p.parent.name != "_errors")
    assert any(p.name == "blue.png" for p in dest.rglob("*"))


def test_a_good_model_still_loads_and_runs_any_batch(tmp_path: Path) -> None:
    """The checks refuse only broken answers: the honest colour model passes them at every batch size."""
    path = onnx_factory.save_model(tmp_path / "fixed.onnx")
    model = load_model(path, provider="cpu")
    probs, cam = model.predict(np.zeros((3, 16, 16, 3), np.uint8))
    assert probs.shape == (3, 3) and cam.shape == (3, 4, 4, 3)
