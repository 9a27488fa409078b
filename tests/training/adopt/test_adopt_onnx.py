"""Adopting foreign ONNX classifiers: each adopted file answers as the original run directly.

For every kind of file other tools write (NCHW ImageNet-normalised, NHWC -1...1, logits or
probabilities, float16, fixed batch 1, labels beside it, Windows ML metadata) the adopted
file must give the original's probabilities (softmax of its logits) on images the tests
preprocess themselves, load through the one contract reader, and give the same top-1 in
`convnet-classify` on image files.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from adopt_factory import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    adopted_probabilities,
    foreign_classifier,
    metadata_of,
    original_probabilities,
    sample_images,
)

from convnet_common import model_format as fmt
from convnet_common.atomic import leftover_temp_files
from convnet_common.imaging import load_image_for_model
from training.adopt.check import FLOAT16_TOLERANCE, FLOAT32_TOLERANCE
from training.model_source import load_model_to_score

HALF = (0.5, 0.5, 0.5)
ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

# name: (factory keyword arguments, extra adopt flags, expected settings)
CASES = {
    "nchw-imagenet": (
        {"layout": "nchw"},
        ["--mean", *IMAGENET_MEAN, "--std", *IMAGENET_STD],
        {"layout": "nchw", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "output": "logits"},
    ),
    "nhwc-minus1-1": (
        {"layout": "nhwc", "seed": 8},
        ["--mean", *HALF, "--std", *HALF],
        {"layout": "nhwc", "mean": HALF, "std": HALF, "output": "logits"},
    ),
    "softmax-probabilities": (
        {"layout": "nchw", "softmax": True, "seed": 2, "opset": 13},
        ["--mean", *ZERO, "--std", *ONE],
        {"layout": "nchw", "mean": ZERO, "std": ONE, "output": "probabilities"},
    ),
    "float16": (
        {"layout": "nchw", "dtype": "float16", "seed": 3},
        ["--mean", *IMAGENET_MEAN, "--std", *IMAGENET_STD],
        {"layout": "nchw", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "output": "logits", "dtype": "float16"},
    ),
    "fixed-batch-1": (
        {"layout": "nchw", "fixed_batch": 1, "seed": 7},
        ["--mean", *HALF, "--std", *HALF],
        {"layout": "nchw", "mean": HALF, "std": HALF, "output": "logits", "fixed_batch": 1},
    ),
    "winml-metadata-bgr": (
        {
            "layout": "nchw",
            "seed": 9,
            "metadata": {"Image.NominalPixelRange": "Normalized_1_1", "Image.BitmapPixelFormat": "Bgr8"},
        },
        [],
        {"layout": "nchw", "mean": HALF, "std": HALF, "output": "logits", "bgr": True},
    ),
}


@pytest.fixture(scope="module")
def adopted(tmp_path_factory):
    """Every case adopted once through the command line: {name: (source, out, expected, stdout)}."""
    from training import cli

    folder = tmp_path_factory.mktemp("adopt-onnx")
    done = {}
    for name, (kwargs, flags, expected) in CASES.items():
        source = foreign_classifier(folder / f"{name}.onnx", **kwargs)
        out = folder / "adopted" / f"{name}.onnx"
        status = cli.main(["adopt", str(source), "--out", str(out), *map(str, flags)])
        assert status == 0, name
        done[name] = (source, out, expected)
    return done


@pytest.mark.parametrize("name", list(CASES))
def test_adopted_file_gives_the_originals_probabilities(adopted, name):
    source, out, expected = adopted[name]
    images = sample_images(24)
    original = original_probabilities(
        source,
        images,
        expected["layout"],
        expected["mean"],
        expected["std"],
        bgr=expected.get("bgr", False),
        dtype=expected.get("dtype", "float32"),
        logits=expected["output"] == "logits",
        fixed_batch=expected.get("fixed_batch"),
    )
    mine = adopted_probabilities(out, images)
    tolerance = FLOAT16_TOLERANCE if expected.get("dtype") == "float16" else FLOAT32_TOLERANCE
    assert np.max(np.abs(mine - original)) < tolerance
    assert (mine.argmax(1) == original.argmax(1)).all()
    assert len(set(original.argmax(1))) > 1, "the test images should not all fall in one class"
    assert leftover_temp_files(out) == []


@pytest.mark.parametrize("name", list(CASES))
def test_adopted_file_loads_through_the_contract_reader(adopted, name):
    source, out, expected = adopted[name]
    model = load_model_to_score(out, batch_size=4)
    assert model.labels == [f"class {i}" for i in range(5)]
    assert model.image_size == (24, 24)
    assert model.batch_size == expected.get("fixed_batch")
    metadata = metadata_of(out)
    assert metadata[fmt.KEY_FORMAT_VERSION] == "1"
    assert json.loads(metadata[fmt.KEY_RESIZE]) == {"mode": "stretch"}
    origin = json.loads(metadata[fmt.KEY_ADOPTED_FROM])
    assert origin["kind"] == "onnx" and origin["file"] == source.name
    assert origin["layout"] == expected["layout"] and origin["output"] == expected["output"]
    assert np.allclose(origin["mean"], expected["mean"]) and np.allclose(origin["std"], expected["std"])
    assert origin["channel_order"] == ("bgr" if expected.get("bgr") else "rgb")
    assert origin["input_size"] == [24, 24] and len(origin["sha256"]) == 64
    assert metadata[fmt.KEY_BACKBONE] == f"adopted: {source.name}"
    assert metadata[fmt.KEY_PRECISION] == ("fp16" if expected.get("dtype") == "float16" else "fp32")


@pytest.mark.parametrize("name", ["nchw-imagenet", "nhwc-minus1-1", "fixed-batch-1", "winml-metadata-bgr"])
def test_convnet_classify_gives_the_originals_top1_on_image_files(adopted, name, tmp_path, capsys):
    from desktop import classify_cli

    source, out, expected = adopted[name]
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, image in enumerate(sample_images(61, count=6, seed=9)):  # not the model's size: stretched
        cv2.imwrite(str(folder / f"photo{index}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    report = tmp_path / "results.json"
    status = classify_cli.main([str(folder), "--model", str(out), "--json", str(report), "--provider", "cpu"])
    capsys.readouterr()
    assert status == 0
    rows = json.loads(report.read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    predicted = {Path(row["path"]).name: row["label"] for row in rows}
    names = sorted(predicted)
    images = np.stack([load_image_for_model(folder / n, 24, 24) for n in names])
    original = original_probabilities(
        source,
        images,
        expected["layout"],
        expected["mean"],
        expected["std"],
        bgr=expected.get("bgr", False),
        fixed_batch=expected.get("fixed_batch"),
    )
    assert [predicted[n] for n in names] == [f"class {i}" for i in original.argmax(1)]


def test_the_printout_says_what_was_detected_and_what_the_flags_replaced(run_cli, tmp_path):
    metadata = {"Image.NominalPixelRange": "Normalized_0_1"}
    source = foreign_classifier(tmp_path / "zoo.onnx", metadata=metadata)
    status, out, err = run_cli("adopt", source, "--out", tmp_path / "a.onnx", "--mean", *HALF, "--std", *HALF)
    assert status == 0, err
    assert "the input tensor's shape" in out
    assert "--mean (given)" in out
    assert "the flag replaces 0 0 0 from the model's metadata Image.NominalPixelRange = Normalized_0_1" in out
    assert "class names were made up" in out
    assert "check: 12 test images" in out and f"wrote {tmp_path / 'a.onnx'}" in out


def test_labels_beside_the_file_in_teachable_machine_form(tmp_path):
    from training import cli

    source = foreign_classifier(tmp_path / "pets.onnx", classes=3)
    (tmp_path / "labels.txt").write_text("0 cat\n1 dog\n2 rabbit\n", encoding="utf-8")
    out = tmp_path / "out" / "pets.onnx"
    assert cli.main(["adopt", str(source), "--out", str(out), "--mean", *map(str, HALF), "--std", *map(str, HALF)]) == 0
    assert load_model_to_score(out).labels == ["cat", "dog", "rabbit"]


def test_labels_flag_and_stem_labels_file(tmp_path):
    from training import cli

    source = foreign_classifier(tmp_path / "flowers.onnx", classes=2)
    (tmp_path / "flowers.labels.txt").write_text("rose\ntulip\n", encoding="utf-8")
    out = tmp_path / "flowers-adopted.onnx"
    assert cli.main(["adopt", str(source), "--out", str(out), "--mean", "0", "0", "0", "--std", "1", "1", "1"]) == 0
    assert load_model_to_score(out).labels == ["rose", "tulip"]
    given = tmp_path / "names.txt"
    given.write_text("red\nyellow\n", encoding="utf-8")
    out2 = tmp_path / "flowers-named.onnx"
    args = ["adopt", str(source), "--out", str(out2), "--labels", str(given), "--mean", "0", "0", "0"]
    assert cli.main([*args, "--std", "1", "1", "1"]) == 0
    assert load_model_to_score(out2).labels == ["red", "yellow"]


def test_shorter_side_crop_is_recorded_in_the_metadata(run_cli, tmp_path):
    source = foreign_classifier(tmp_path / "timm.onnx")
    out = tmp_path / "timm-adopted.onnx"
    flags = ["--mean", *IMAGENET_MEAN, "--std", *IMAGENET_STD, "--resize", "shorter-side-crop", "--crop-fraction", 0.9]
    status, _, err = run_cli("adopt", source, "--out", out, *flags)
    assert status == 0, err
    metadata = metadata_of(out)
    assert json.loads(metadata[fmt.KEY_RESIZE]) == {"mode": fmt.RESIZE_SHORTER_SIDE_CROP, "crop_fraction": 0.9}
    assert "centre-cropped" in metadata[fmt.KEY_PREPROCESSING]


def test_dynamic_size_takes_input_size_flag(run_cli, tmp_path):
    source = foreign_classifier(tmp_path / "dyn.onnx", dynamic_size=True)
    out = tmp_path / "dyn-adopted.onnx"
    status, _, err = run_cli("adopt", source, "--out", out, "--mean", *HALF, "--std", *HALF)
    assert status == 2 and "--input-size H W" in err and not out.exists()
    status, _, err = run_cli("adopt", source, "--out", out, "--mean", *HALF, "--std", *HALF, "--input-size", 32, 40)
    assert status == 0, err
    assert load_model_to_score(out).image_size == (32, 40)
    images = sample_images(32, count=4)[:, :, :32]
    images = np.ascontiguousarray(np.concatenate([images, images[:, :, :8]], axis=2))
    original = original_probabilities(source, images, "nchw", HALF, HALF)
    assert np.max(np.abs(adopted_probabilities(out, images) - original)) < FLOAT32_TOLERANCE


@pytest.mark.slow
def test_keras_network_exported_by_tf2onnx_as_nchw(tmp_path):
    """The PyTorch-like case made from Keras: tf2onnx with inputs_as_nchw, ImageNet normalisation."""
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    from training import cli

    keras.utils.set_random_seed(0)
    inputs = keras.Input((20, 20, 3), name="pixels")
    x = keras.layers.Conv2D(6, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(x)
    network = keras.Model(inputs, outputs)
    spec = (tf.TensorSpec((None, 20, 20, 3), tf.float32, name="pixels"),)
    proto, _ = tf2onnx.convert.from_keras(network, input_signature=spec, opset=17, inputs_as_nchw=["pixels"])
    proto.ir_version = min(proto.ir_version, 8)
    source = tmp_path / "keras-nchw.onnx"
    onnx.save(proto, str(source))
    out = tmp_path / "adopted.onnx"
    flags = ["--mean", *map(str, IMAGENET_MEAN), "--std", *map(str, IMAGENET_STD)]
    assert cli.main(["adopt", str(source), "--out", str(out), *flags]) == 0
    images = sample_images(20, count=8)
    keras_input = (images / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    logits = network.predict(keras_input.astype(np.float32), verbose=0).astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.max(np.abs(adopted_probabilities(out, images) - expected)) < FLOAT32_TOLERANCE


def test_an_opset_9_source_is_converted_and_still_matches(tmp_path):
    import onnx

    from training import cli

    source = foreign_classifier(tmp_path / "old.onnx", opset=9, softmax=True, seed=2)
    out = tmp_path / "old-adopted.onnx"
    assert cli.main(["adopt", str(source), "--out", str(out), "--mean", "0", "0", "0", "--std", "1", "1", "1"]) == 0
    assert [o.version for o in onnx.load(str(out)).opset_import if o.domain == ""] == [13]
    images = sample_images(24)
    original = original_probabilities(source, images, "nchw", ZERO, ONE, logits=False)
    assert np.max(np.abs(adopted_probabilities(out, images) - original)) < FLOAT32_TOLERANCE


def test_a_grey_input_is_fed_the_luma_of_the_scaled_pixels(tmp_path):
    import onnxruntime as ort

    from training import cli

    source = foreign_classifier(tmp_path / "mnist-like.onnx", channels=1, seed=4)
    out = tmp_path / "grey-adopted.onnx"
    assert cli.main(["adopt", str(source), "--out", str(out), "--mean", "0", "0", "0", "--std", "1", "1", "1"]) == 0
    images = sample_images(24)
    grey = (images.astype(np.float64) / 255.0) @ np.array([0.299, 0.587, 0.114])  # BT.601, as OpenCV
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": grey[:, None].astype(np.float32)})[0].astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.max(np.abs(adopted_probabilities(out, images) - expected)) < FLOAT32_TOLERANCE


def test_1000_scores_take_imagenet_names_from_the_keras_cache(tmp_path, monkeypatch, run_cli):
    names = [f"synset-{i}" for i in range(1000)]  # the real file's shape: {"0": ["n01440764", "tench"], ...}
    cache = tmp_path / "keras-home" / "models"
    cache.mkdir(parents=True)
    (cache / "imagenet_class_index.json").write_text(
        json.dumps({str(i): [f"n{i:08d}", n] for i, n in enumerate(names)})
    )
    source = foreign_classifier(tmp_path / "imagenet.onnx", classes=1000, size=16)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    status, stdout, _ = run_cli("adopt", source, "--inspect", "--json")
    assert status == 0
    labels = json.loads(stdout)["settings"]["labels"]
    assert labels["value"] == names and "ImageNet" in labels["origin"]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "nowhere"))
    status, stdout, _ = run_cli("adopt", source, "--inspect", "--json")
    reply = json.loads(stdout)
    assert reply["settings"]["labels"]["value"][:2] == ["class 0", "class 1"]
    assert any("ImageNet" in note and "--labels" in note for note in reply["notes"])


def test_a_graph_computing_in_float16_matches_within_the_float16_tolerance(tmp_path):
    from adopt_factory import convert_to_float16

    from training import cli

    source = convert_to_float16(foreign_classifier(tmp_path / "f32.onnx", seed=3), tmp_path / "f16.onnx")
    out = tmp_path / "f16-adopted.onnx"
    flags = ["--mean", *map(str, IMAGENET_MEAN), "--std", *map(str, IMAGENET_STD)]
    assert cli.main(["adopt", str(source), "--out", str(out), *flags]) == 0
    images = sample_images(24)
    original = original_probabilities(source, images, "nchw", IMAGENET_MEAN, IMAGENET_STD, dtype="float16")
    mine = adopted_probabilities(out, images)
    assert np.max(np.abs(mine - original)) < FLOAT16_TOLERANCE
    assert (mine.argmax(1) == original.argmax(1)).all()
    assert metadata_of(out)[fmt.KEY_PRECISION] == "fp16"
