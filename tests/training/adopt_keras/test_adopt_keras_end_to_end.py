"""`convnet-train adopt` on Keras, Teachable Machine, Lobe (SavedModel and ONNX) and SavedModel sources: the
adopted file gives the ORIGINAL model's answers (run here with Keras / TensorFlow on
images this test preprocesses in numpy), carries in-graph maps for Keras pooling->dense
heads, and `convnet-classify` crops and labels photos as the original tool would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from foreign_keras_models import LOBE_LABELS, SIZE, images, make_lobe_onnx

from convnet_common import model_format as fmt
from training.adopt.check import FLOAT32_TOLERANCE

pytestmark = pytest.mark.slow


def softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def keras_original(path: Path, scale):
    """The Keras file run by Keras on uint8 pixels scaled by `scale` (the tool's own preprocessing)."""
    from training.adopt.keras_source import load_keras_model

    model = load_keras_model(path)  # Keras itself, with only the DepthwiseConv2D stand-in
    return lambda pixels: np.asarray(model(scale(pixels.astype(np.float32)), training=False), np.float64)


def savedmodel_original(folder: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures["serving_default"]

    def run(pixels):
        _ = loaded
        return signature(Image=tf.constant(pixels.astype(np.float32) / 255))["Confidences"].numpy().astype(np.float64)

    return run


def onnx_original(path: Path):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda pixels: session.run(None, {"Image": pixels.astype(np.float32) / 255})[0].astype(np.float64)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, rescaling_keras, teachable_machine, lobe_savedmodel):
    """Each source adopted once through the command line: {name: (out, original, labels, has_cam)}."""
    from training import cli

    folder = tmp_path_factory.mktemp("adopted")
    plain = folder / "plain savedmodel"
    shutil.copytree(lobe_savedmodel, plain, ignore=shutil.ignore_patterns("signature.json"))
    lobe_onnx = make_lobe_onnx(folder / "lobe onnx")
    cases = {
        "keras-rescaling": (rescaling_keras, [], keras_original(rescaling_keras, lambda x: x), None, True),
        "teachable-machine": (
            teachable_machine,
            [],
            keras_original(teachable_machine / "keras_model.h5", lambda x: x / 127.5 - 1),
            ["cat", "dog"],
            True,
        ),
        "lobe": (lobe_savedmodel, [], savedmodel_original(lobe_savedmodel), LOBE_LABELS, False),
        "lobe-onnx": (lobe_onnx, [], onnx_original(lobe_onnx / "model.onnx"), LOBE_LABELS, False),
        "savedmodel": (
            plain,
            ["--mean", "0", "0", "0", "--std", "1", "1", "1"],
            savedmodel_original(plain),
            None,
            False,
        ),
    }
    done = {}
    for name, (source, flags, original, labels, has_cam) in cases.items():
        out = folder / f"{name}.onnx"
        assert cli.main(["adopt", str(source), "--out", str(out), *flags]) == 0, name
        done[name] = (out, original, labels, has_cam)
    return done


def run_adopted(path: Path, pixels: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs() if o.name in (fmt.PROBABILITIES_OUTPUT, fmt.CAM_OUTPUT)]
    return dict(zip(wanted, session.run(wanted, {fmt.INPUT_NAME: pixels})))


@pytest.mark.parametrize("name", ["keras-rescaling", "teachable-machine", "lobe", "lobe-onnx", "savedmodel"])
def test_adopted_file_gives_the_originals_answers(adopted, name):
    out, original, labels, has_cam = adopted[name]
    pixels = np.round(images(0, 255, 16, seed=31)).astype(np.uint8)
    expected = original(pixels)
    if name == "keras-rescaling":  # logits: the adopted file appends the softmax
        expected = softmax(expected)
    outputs = run_adopted(out, pixels)
    got = outputs[fmt.PROBABILITIES_OUTPUT]
    assert np.max(np.abs(got - expected)) < FLOAT32_TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert len(set(expected.argmax(1))) > 1, "the drawn images should not all fall in one class"
    assert (fmt.CAM_OUTPUT in outputs) == has_cam
    if has_cam:
        assert outputs[fmt.CAM_OUTPUT].shape[0] == len(pixels) and outputs[fmt.CAM_OUTPUT].shape[-1] == got.shape[1]
        assert outputs[fmt.CAM_OUTPUT].min() >= 0 and outputs[fmt.CAM_OUTPUT].max() > 0
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    if labels is not None:
        assert json.loads(metadata[fmt.KEY_LABELS]) == labels
    assert (fmt.KEY_CAM_LAYER in metadata) == has_cam


def centre_square_halved(image: np.ndarray) -> np.ndarray:
    """What Teachable Machine (ImageOps.fit) and Lobe (resize to fill, centre crop) feed a
    model from a 64x96 photo: the centre 64x64 square, halved by 2x2 averaging."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side].astype(np.float64)
    return np.round(square.reshape(SIZE, 2, SIZE, 2, 3).mean(axis=(1, 3))).astype(np.uint8)


@pytest.mark.parametrize("name", ["teachable-machine", "lobe"])
def test_convnet_classify_crops_photos_as_the_tool_does(adopted, name, tmp_path, capsys):
    from desktop import classify_cli

    out, original, labels, _ = adopted[name]
    rng = np.random.default_rng(41)
    photos = []
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(12):
        square = np.repeat(np.repeat(np.round(images(0, 255, 1, seed=50 + index)[0]), 2, 0), 2, 1)
        # A wide photo with plain-coloured sides that only cropping removes.
        border = np.broadcast_to(rng.integers(0, 256, (1, 1, 3)), (2 * SIZE, 16, 3))
        photo = np.concatenate([border, square, border], axis=1).astype(np.uint8)
        photos.append(photo)
        cv2.imwrite(str(folder / f"photo{index}.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    report = tmp_path / "results.json"
    status = classify_cli.main([str(folder), "--model", str(out), "--json", str(report), "--provider", "cpu"])
    capsys.readouterr()
    assert status == 0
    rows = json.loads(report.read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    predicted = {Path(row["path"]).name: row["label"] for row in rows}
    expected = original(np.stack([centre_square_halved(p) for p in photos])).argmax(1)
    assert [predicted[f"photo{i}.png"] for i in range(len(photos))] == [labels[k] for k in expected]
    assert len(set(expected)) > 1, "the photos should not all fall in one class"
    stretched = np.stack([cv2.resize(p, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for p in photos])
    assert (original(stretched).argmax(1) != expected).any(), "the photos must tell cropping from stretching"


def test_a_keras_model_without_fixed_size_needs_input_size(tmp_path, capsys):
    import keras
    from keras import layers

    from training import cli

    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(tmp_path / "any_size.keras")
    out = tmp_path / "adopted.onnx"
    assert cli.main(["adopt", str(tmp_path / "any_size.keras"), "--out", str(out)]) == 2
    assert "--input-size" in capsys.readouterr().err and not out.exists()
    assert cli.main(["adopt", str(tmp_path / "any_size.keras"), "--out", str(out), "--input-size", "40", "48"]) == 0
    pixels = np.round(images(0, 255, 8, seed=33, size=48)[:, 4:44]).astype(np.uint8)  # 40 x 48
    expected = np.asarray(model(pixels.astype(np.float32), training=False))
    got = run_adopted(out, pixels)[fmt.PROBABILITIES_OUTPUT]
    assert np.max(np.abs(got - expected)) < FLOAT32_TOLERANCE
