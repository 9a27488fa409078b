"""The folder-run path: its own session, a measured batch size, and the same answers as Classify."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx_factory
import pytest

from convnet_common import batch_size
from convnet_common.imaging import load_image_for_model
from desktop import classify_cli
from desktop.core.batch import classify_paths, run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import load_model


class FakeClock:
    """Time that only moves when the fake model 'runs': overhead + per-image cost."""

    def __init__(self, overhead_s: float, per_image_s: float) -> None:
        self.now = 0.0
        self.overhead_s = overhead_s
        self.per_image_s = per_image_s
        self.sizes: list[int] = []

    def __call__(self) -> float:
        return self.now

    def run(self, batch: np.ndarray) -> None:
        self.sizes.append(len(batch))
        self.now += self.overhead_s + self.per_image_s * len(batch)


def test_call_overhead_pushes_the_batch_up_and_compute_keeps_it_small() -> None:
    tiny = FakeClock(overhead_s=200e-6, per_image_s=5e-6)  # a LeNet: the call dominates
    assert batch_size.measure_batch_size(tiny.run, (28, 28), clock=tiny) == batch_size.MAX_MEASURED_BATCH
    big = FakeClock(overhead_s=50e-6, per_image_s=8e-3)  # MobileNetV2 on one core
    assert batch_size.measure_batch_size(big.run, (224, 224), clock=big) == 1
    medium = FakeClock(overhead_s=3e-3, per_image_s=2e-3)  # gains 30, 21, 14, then 8 %
    assert batch_size.measure_batch_size(medium.run, (64, 64), clock=medium) == 8
    # The measurement stays inside its time budget even for a slow model.
    slow = FakeClock(overhead_s=0.0, per_image_s=0.2)
    batch_size.measure_batch_size(slow.run, (224, 224), clock=slow)
    assert slow.sizes == [1, 1]


def test_throughput_session_gives_the_same_answers(colour_model: Path) -> None:
    model = load_model(colour_model, provider="cpu")
    batch = np.random.default_rng(0).integers(0, 256, (5, *model.input_size, 3), dtype=np.uint8)
    probabilities, cams = model.predict(batch)
    fast_probabilities, fast_cams = model.predict(batch, throughput=True)
    assert model.throughput_session() is not model.session
    assert model.throughput_session().get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(fast_probabilities, probabilities, atol=1e-6)
    np.testing.assert_allclose(fast_cams, cams, atol=1e-6)
    size = model.throughput_batch_size()
    assert size in {1, 2, 4, 8, 16, 32, 64}
    assert model.throughput_batch_size() == size  # measured once per model


def test_classify_tab_batch_and_training_see_the_same_pixels(colour_model: Path, tmp_path: Path) -> None:
    """A large JPEG is decoded at reduced size for the model; every path must agree exactly."""
    model = load_model(colour_model, provider="cpu")
    classifier = Classifier(model)
    rng = np.random.default_rng(1)
    paths = []
    for i, colour in enumerate([(230, 20, 20), (20, 230, 20), (20, 20, 230)]):
        image = np.clip(onnx_factory.mostly(colour, 16)[..., :3].astype(int) + 0, 0, 255).astype(np.uint8)
        big = cv2.resize(image, (640, 480), interpolation=cv2.INTER_NEAREST)
        big = cv2.add(big, rng.integers(0, 30, big.shape, dtype=np.uint8))
        path = tmp_path / f"photo{i}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        paths.append(path)
    one_by_one = [classifier.classify_path(path) for path in paths]
    dropped = list(classify_paths(classifier, paths))
    folder = [result for chunk in run_batch(classifier, [tmp_path]) for result in chunk]
    direct, _ = model.predict(np.stack([load_image_for_model(path, *model.input_size) for path in paths]))
    for single, drop, slim, expected in zip(one_by_one, dropped, folder, direct):
        assert single.image is not None and single.image.shape == (480, 640, 3)  # full size kept for display
        np.testing.assert_allclose(single.probabilities, expected, atol=1e-6)
        np.testing.assert_allclose(drop.probabilities, expected, atol=1e-6)
        assert slim.label == single.top_label and slim.confidence == pytest.approx(float(expected.max()), abs=1e-6)


def test_cli_reports_its_throughput(colour_model: Path, tmp_path: Path, write_png, capsys) -> None:
    for i in range(6):
        write_png(f"img{i}.png", onnx_factory.mostly((240, 10, 10)), tmp_path / "in")
    code = classify_cli.main([str(tmp_path / "in"), "--model", str(colour_model), "--csv", str(tmp_path / "o.csv")])
    assert code == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("classified 6 images, 0 failed") and "images/s)" in last
