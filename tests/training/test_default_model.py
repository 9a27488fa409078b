"""The bundled default model: accurate on held-out scikit-learn digits, and useful on
digits drawn in ways its training never used, in both polarities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from digit_drawings import draw_test_digit

from convnet_common import model_format as fmt
from convnet_common.imaging import resize_for_model

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "exported_models" / "digits-lenet5.onnx"


@pytest.fixture(scope="module")
def session():
    assert DEFAULT_MODEL.is_file(), "run scripts/build_default_model.py"
    return ort.InferenceSession(str(DEFAULT_MODEL), providers=["CPUExecutionProvider"])


def test_metadata_records_held_out_accuracy(session):
    meta = session.get_modelmeta().custom_metadata_map
    assert meta[fmt.KEY_BACKBONE] == "lenet5"
    assert json.loads(meta[fmt.KEY_LABELS]) == [str(d) for d in range(10)]
    training = json.loads(meta[fmt.KEY_TRAINING])
    assert training["test_images"] >= 350  # a fifth of the 1,797 digits
    assert training["held_out_accuracy"] == training["test_accuracy"] >= 0.95


def test_held_out_sklearn_digits_reproduce_recorded_accuracy(session):
    """Recompute the accuracy on the build script's seeded test split, independently."""
    import build_default_model
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(build_default_model.DEFAULT_SEED).permutation(len(digits.target))
    test_indices = order[: len(order) // 5]
    images = np.stack(
        [
            resize_for_model(np.repeat((digits.images[i] * 255 / 16).astype(np.uint8)[..., None], 3, -1), 32, 32)
            for i in test_indices
        ]
    )
    probabilities = session.run(["probabilities"], {"image": images})[0]
    accuracy = float(np.mean(probabilities.argmax(1) == digits.target[test_indices]))
    recorded = json.loads(session.get_modelmeta().custom_metadata_map[fmt.KEY_TRAINING])["test_accuracy"]
    assert accuracy >= 0.95
    assert abs(accuracy - recorded) < 0.01


def test_drawn_digits_in_both_polarities(session, record_property):
    rng = np.random.default_rng(2026)
    per_polarity = {}
    for dark_on_light in (True, False):
        images, truth = [], []
        for style in ("font0", "font1", "font2", "pen"):
            for digit in range(10):
                for _ in range(3):
                    images.append(resize_for_model(draw_test_digit(digit, style, dark_on_light, rng), 32, 32))
                    truth.append(digit)
        probabilities = session.run(["probabilities"], {"image": np.stack(images)})[0]
        per_polarity[dark_on_light] = float(np.mean(probabilities.argmax(1) == np.array(truth)))
    record_property("drawn_digit_accuracy", per_polarity)
    print(f"drawn digits: dark-on-light {per_polarity[True]:.3f}, light-on-dark {per_polarity[False]:.3f}")
    assert per_polarity[True] >= 0.80
    assert per_polarity[False] >= 0.80
