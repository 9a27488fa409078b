"""Classifier, activation maps and folder walking, on the generated colour model."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import onnx_factory
import pytest

from desktop.core.activation import normalise_cam, overlay
from desktop.core.batch import classify_paths, iter_image_files
from desktop.core.classifier import Classifier
from desktop.core.model import load_model
from desktop.core.paths import MODEL_ENV_VAR, default_model_path

RED, GREEN, BLUE = (230, 20, 20), (20, 230, 20), (20, 20, 230)


@pytest.fixture(scope="module")
def classifier(colour_model: Path) -> Classifier:
    return Classifier(load_model(colour_model, provider="cpu"))


@pytest.mark.parametrize(("colour", "label"), [(RED, "red"), (GREEN, "green"), (BLUE, "blue")])
def test_classifies_drawn_colours(classifier: Classifier, colour, label: str) -> None:
    image = onnx_factory.mostly(colour, height=90, width=120)  # resized to 16x16 by the classifier
    prediction = classifier.classify_image(image)
    assert prediction.ok
    assert prediction.top_label == label
    assert prediction.top_k[0][1] > 0.9
    assert {name for name, _ in prediction.top_k} == {"red", "green", "blue"}
    assert prediction.image is image
    assert prediction.cam is not None and prediction.cam.shape == (4, 4, 3)


def test_cam_highlights_the_coloured_region(classifier: Classifier) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    image[:32, :32] = RED  # upper-left quarter only
    cam = classifier.classify_image(image).cam[..., 0]
    assert cam[:2, :2].min() > cam[2:, 2:].max()


def test_top_k_is_limited_by_class_count(classifier: Classifier) -> None:
    assert len(classifier.classify_image(onnx_factory.solid_image(RED), top_k=10).top_k) == 3
    assert len(classifier.classify_image(onnx_factory.solid_image(RED), top_k=1).top_k) == 1


def test_batch_matches_single(classifier: Classifier) -> None:
    images = [onnx_factory.solid_image(c) for c in (RED, GREEN, BLUE)]
    batch = classifier.classify_batch(images)
    assert [p.top_label for p in batch] == ["red", "green", "blue"]
    single = classifier.classify_image(images[1])
    np.testing.assert_allclose(batch[1].probabilities, single.probabilities, rtol=1e-5)


def test_classify_path_turns_read_errors_into_predictions(classifier: Classifier, tmp_path: Path, write_png) -> None:
    good = write_png("blue.png", onnx_factory.solid_image(BLUE))
    assert classifier.classify_path(good).top_label == "blue"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    failed = classifier.classify_path(empty)
    assert not failed.ok and "empty" in failed.error and failed.top_k == []
    assert "not found" in classifier.classify_path(tmp_path / "missing.png").error


def test_normalise_cam() -> None:
    cam = normalise_cam(np.array([[0.0, 2.0], [4.0, 1.0]]))
    assert cam.dtype == np.float32 and cam.max() == 1.0 and cam[0, 1] == 0.5
    zero = normalise_cam(np.zeros((3, 3)))
    assert not zero.any() and not np.isnan(zero).any()


def test_overlay_blends_and_respects_opacity() -> None:
    image = onnx_factory.solid_image((128, 128, 128), 30, 40)
    cam = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    assert np.array_equal(overlay(image, cam, 0.0), image)
    blended = overlay(image, cam, 0.6)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    assert not np.array_equal(blended, image)
    assert not np.array_equal(blended, overlay(image, cam, 0.3))


def test_iter_image_files_recurses_sorted_and_survives_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("b/2.png", "a/deep/1.JPG", "a/0.png", "a/notes.txt", "z.webp"):
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    found = list(iter_image_files([tmp_path]))
    rel = [str(p.relative_to(tmp_path)) for p in found]
    assert rel == ["a/0.png", "a/deep/1.JPG", "b/2.png", "z.webp"]
    named = tmp_path / "a" / "notes.txt"
    assert list(iter_image_files([named])) == [named]  # named files are attempted anyway


def test_classify_paths_continues_past_bad_files(classifier: Classifier, tmp_path: Path, write_png) -> None:
    write_png("1-red.png", onnx_factory.solid_image(RED))
    (tmp_path / "2-broken.png").write_text("not a png")
    write_png("3-green.png", onnx_factory.solid_image(GREEN))
    progress: list[tuple[int, int]] = []
    results = list(classify_paths(classifier, [tmp_path], batch_size=2, progress=lambda d, t: progress.append((d, t))))
    assert [p.path.name for p in results] == ["1-red.png", "2-broken.png", "3-green.png"]
    assert [p.top_label for p in results] == ["red", None, "green"]
    assert results[1].error and "not a readable image" in results[1].error
    assert progress == [(2, 3), (3, 3)]


def test_classify_paths_can_be_cancelled(classifier: Classifier, tmp_path: Path, write_png) -> None:
    for i in range(6):
        write_png(f"{i}.png", onnx_factory.solid_image(RED))
    cancel = threading.Event()
    results = []
    for prediction in classify_paths(classifier, [tmp_path], batch_size=2, cancel=cancel):
        results.append(prediction)
        cancel.set()
    assert len(results) == 2  # the batch in flight finishes, no further batch starts


def test_default_model_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(MODEL_ENV_VAR, raising=False)
    assert default_model_path() == Path(__file__).resolve().parents[3] / "exported_models" / "digits-lenet5.onnx"
    monkeypatch.setenv(MODEL_ENV_VAR, str(tmp_path / "mine.onnx"))
    assert default_model_path() == tmp_path / "mine.onnx"
