"""Each reader's ONNX graph, run by ONNX Runtime, gives what the original model gives on the
same preprocessed batch, and the settings it reports are the ones the model was built with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from foreign_keras_models import (
    LOBE_LABELS,
    SIZE,
    images,
    make_lobe_onnx,
    make_rescaling_keras,
    make_teachable_machine_savedmodel,
    run_graph,
)

from training.adopt.detect_kind import is_lobe, is_teachable_machine
from training.adopt.source import KIND_KERAS, KIND_LOBE, KIND_SAVEDMODEL, KIND_TEACHABLE_MACHINE

pytestmark = pytest.mark.slow

# Measured here: ONNX Runtime vs Keras/TensorFlow differ by at most ~1.2e-7 on these
# models (float32 rounding); 1e-5 leaves room for other CPUs without hiding a wrong graph.
TOLERANCE = 1e-5


def assert_graph_matches_reference(source, inputs: np.ndarray) -> np.ndarray:
    expected = source.reference(inputs)
    got = run_graph(source.graph, inputs)[0]
    assert expected.dtype == np.float32 and expected.shape == got.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    assert len(set(expected.argmax(axis=1))) > 1, "degenerate model: every input gets the same class"
    return expected


@pytest.fixture(scope="module")
def keras_source(rescaling_keras):
    from training.adopt.keras_source import read_keras_source

    return read_keras_source(rescaling_keras)


@pytest.fixture(scope="module")
def tm_source(teachable_machine):
    from training.adopt.teachable_machine import read_teachable_machine

    return read_teachable_machine(teachable_machine)


@pytest.fixture(scope="module")
def lobe_source(lobe_savedmodel):
    from training.adopt.lobe import read_lobe

    return read_lobe(lobe_savedmodel)


def test_keras_file_with_rescaling_matches_and_reports_raw_pixels_and_logits(keras_source, rescaling_keras):
    assert keras_source.kind == KIND_KERAS and keras_source.path == rescaling_keras
    assert_graph_matches_reference(keras_source, images(0, 255))
    detected = {name: found.value for name, found in keras_source.detected.items()}
    assert detected["layout"] == "nhwc"
    assert detected["input_size"] == (SIZE, SIZE)
    assert detected["output"] == "logits"
    assert detected["mean"] == (0.0, 0.0, 0.0)
    np.testing.assert_allclose(detected["std"], [1 / 255] * 3)
    assert "labels" not in detected  # no labels.txt beside it
    assert "Rescaling" in keras_source.detected["mean"].origin


def test_keras_h5_without_rescaling_reports_probabilities_and_no_pixel_range(tmp_path):
    from training.adopt.keras_source import read_keras_source

    path = make_rescaling_keras(tmp_path / "plain.h5", classes=4, rescaling=False, softmax=True)
    (tmp_path / "labels.txt").write_text("north\neast\nsouth\nwest\n", encoding="utf-8")
    source = read_keras_source(path)
    probabilities = assert_graph_matches_reference(source, images(-1, 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    detected = {name: found.value for name, found in source.detected.items()}
    assert detected["output"] == "probabilities"
    assert detected["labels"] == ["north", "east", "south", "west"]
    assert "mean" not in detected and "std" not in detected


def test_teachable_machine_export_matches_and_carries_its_known_preprocessing(tm_source, teachable_machine):
    assert tm_source.kind == KIND_TEACHABLE_MACHINE
    assert tm_source.path == teachable_machine / "keras_model.h5"
    probabilities = assert_graph_matches_reference(tm_source, images(-1, 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    detected = {name: found.value for name, found in tm_source.detected.items()}
    assert detected == {
        "layout": "nhwc",
        "input_size": (SIZE, SIZE),
        "output": "probabilities",
        "labels": ["cat", "dog"],
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "channel_order": "rgb",
        "resize": "shorter-side-crop",
        "crop_fraction": 1.0,
    }
    assert tm_source.detected["mean"].origin.startswith("Teachable Machine export")


def test_teachable_machine_h5_given_directly_reads_the_labels_beside_it(teachable_machine):
    from training.adopt.teachable_machine import read_teachable_machine

    source = read_teachable_machine(teachable_machine / "keras_model.h5")
    assert source.detected["labels"].value == ["cat", "dog"]
    inputs = images(-1, 1, seed=3)
    np.testing.assert_allclose(run_graph(source.graph, inputs)[0], source.reference(inputs), atol=TOLERANCE)


def test_teachable_machine_h5_needs_the_depthwise_stand_in(teachable_machine):
    """The fixture reproduces the real failure, so the stand-in is what makes it load."""
    import keras

    with pytest.raises(Exception, match="groups"):
        keras.models.load_model(teachable_machine / "keras_model.h5", compile=False)


def test_lobe_savedmodel_keeps_confidences_drops_the_string_prediction(lobe_source, lobe_savedmodel):
    assert lobe_source.kind == KIND_LOBE and lobe_source.path == lobe_savedmodel
    assert [output.name for output in lobe_source.graph.graph.output] == ["scores"]
    probabilities = assert_graph_matches_reference(lobe_source, images(0, 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    detected = {name: found.value for name, found in lobe_source.detected.items()}
    assert detected == {
        "layout": "nhwc",
        "input_size": (SIZE, SIZE),
        "output": "probabilities",
        "labels": LOBE_LABELS,
        "mean": (0.0, 0.0, 0.0),
        "std": (1.0, 1.0, 1.0),
        "channel_order": "rgb",
        "resize": "shorter-side-crop",
        "crop_fraction": 1.0,
    }
    assert lobe_source.cam_graph is None
    assert any("forward passes" in note for note in lobe_source.notes)


def test_lobe_reference_is_the_original_signature(lobe_source, lobe_savedmodel):
    import tensorflow as tf

    inputs = images(0, 1, seed=5)
    signature = tf.saved_model.load(str(lobe_savedmodel)).signatures["serving_default"]
    original = signature(Image=tf.constant(inputs))
    np.testing.assert_array_equal(lobe_source.reference(inputs), original["Confidences"].numpy())
    names = [name.decode() for name in original["Prediction"].numpy()]
    assert names == [LOBE_LABELS[i] for i in lobe_source.reference(inputs).argmax(axis=1)]


def test_plain_savedmodel_reports_what_its_graph_shows(lobe_savedmodel):
    from training.adopt.savedmodel_source import read_savedmodel_source

    source = read_savedmodel_source(lobe_savedmodel / "saved_model.pb")
    assert source.kind == KIND_SAVEDMODEL
    assert_graph_matches_reference(source, images(0, 1, seed=7))
    detected = {name: found.value for name, found in source.detected.items()}
    assert detected == {"layout": "nhwc", "input_size": (SIZE, SIZE), "output": "probabilities"}
    assert "Softmax" in source.detected["output"].origin


def test_exports_are_recognised_by_their_files(teachable_machine, lobe_savedmodel, rescaling_keras, tmp_path):
    assert is_teachable_machine(teachable_machine)
    assert is_teachable_machine(teachable_machine / "keras_model.h5")
    assert not is_teachable_machine(rescaling_keras)
    assert not is_teachable_machine(Path(rescaling_keras).parent)
    assert is_lobe(lobe_savedmodel) and is_lobe(lobe_savedmodel / "signature.json")
    assert not is_lobe(teachable_machine) and not is_lobe(teachable_machine / "labels.txt")
    lonely = tmp_path / "only_model"
    lonely.mkdir()
    (lonely / "keras_model.h5").write_bytes(b"")
    assert not is_teachable_machine(lonely), "no labels.txt: not a Teachable Machine export"


def test_lobe_onnx_export_is_read_with_lobes_settings(tmp_path):
    from training.adopt.lobe import read_lobe

    folder = make_lobe_onnx(tmp_path / "fruit ONNX")
    source = read_lobe(folder)
    assert source.kind == KIND_LOBE and source.path == folder
    inputs = images(0, 1, seed=9)
    assert_graph_matches_reference(source, inputs)
    original = run_graph(onnx.load(str(folder / "model.onnx")), inputs)[0]
    np.testing.assert_allclose(source.reference(inputs), original, atol=1e-6)
    detected = {name: found.value for name, found in source.detected.items()}
    assert detected["labels"] == LOBE_LABELS
    assert is_lobe(folder / "model.onnx"), "the model file given directly is still Lobe's"
    assert read_lobe(folder / "model.onnx").detected["labels"].value == LOBE_LABELS
    assert (detected["mean"], detected["std"]) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert (detected["resize"], detected["crop_fraction"]) == ("shorter-side-crop", 1.0)
    assert detected["layout"] == "nhwc" and detected["input_size"] == (SIZE, SIZE)


def test_teachable_machine_savedmodel_export_is_read_with_its_settings(tmp_path):
    from training.adopt.keras_source import load_keras_model
    from training.adopt.teachable_machine import read_teachable_machine

    folder = make_teachable_machine_savedmodel(tmp_path / "converted_savedmodel")
    assert is_teachable_machine(folder) and is_teachable_machine(folder / "model.savedmodel")
    source = read_teachable_machine(folder)
    assert source.kind == KIND_TEACHABLE_MACHINE
    inputs = images(-1, 1, seed=11)
    assert_graph_matches_reference(source, inputs)
    keras_original = load_keras_model(tmp_path / "converted_savedmodel-keras" / "keras_model.h5")
    np.testing.assert_allclose(source.reference(inputs), keras_original(inputs), atol=TOLERANCE)
    detected = {name: found.value for name, found in source.detected.items()}
    assert detected["labels"] == ["cat", "dog"]
    assert (detected["mean"], detected["std"], detected["resize"]) == ((0.5,) * 3, (0.5,) * 3, "shorter-side-crop")
