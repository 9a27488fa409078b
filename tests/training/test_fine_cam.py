"""The in-graph `cam_fine` output (LayerCAM at an earlier layer, training.fine_cam) equals
LayerCAM computed with tf.GradientTape, in Keras and after conversion to ONNX."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from training import registry
from training.export import convert_to_onnx
from training.model_builder import BASE_LAYER, build_classifier, build_export_model, head_of
from training.networks import NETWORKS

pytestmark = pytest.mark.slow

NETS = [pytest.param("lenet5", 32, id="lenet5-conv1-avgpool-tanh"), pytest.param("mnist_convnet", 28, id="mnist-conv2")]


def gradient_tape_layercam(classifier, images: np.ndarray, fine_layer: str) -> np.ndarray:
    """Reference LayerCAM (Jiang et al. 2021): autodiff of each logit w.r.t. the fine layer,
    ReLU(sum_k ReLU(grad) * A), written independently of training.fine_cam."""
    import keras
    import tensorflow as tf

    chain = [layer for layer in classifier.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in chain]
    base = classifier.get_layer(BASE_LAYER)
    taps = keras.Model(base.input, [base.get_layer(fine_layer).output, base.output])
    pixels = tf.constant(images.astype(np.float32))
    maps = []
    for k in range(classifier.output_shape[-1]):
        with tf.GradientTape() as tape:
            x = pixels
            for layer in chain[: names.index(BASE_LAYER)]:
                x = layer(x)
            fine, x = taps(x, training=False)
            for layer in head_of(classifier):
                x = layer(x, training=False)
            score = x[:, k]
        grads = tape.gradient(score, fine)
        maps.append(tf.nn.relu(tf.reduce_sum(tf.nn.relu(grads) * fine, axis=-1)).numpy())
    return np.stack(maps, axis=-1)


def normalise(maps: np.ndarray) -> np.ndarray:
    peak = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peak > 0, peak, 1.0)


def spread_classifier(name: str, size: int):
    """A weights=None classifier whose class layer has a trained-like spread (distinct class maps)."""
    import keras

    keras.utils.set_random_seed(5)
    classifier = build_classifier(registry.get_backbone(name), 4, size, weights=None)
    class_layer = [layer for layer in head_of(classifier) if layer.get_weights()][-1]
    kernel, bias = class_layer.get_weights()
    class_layer.set_weights([np.random.default_rng(1).normal(0, 1, kernel.shape).astype(np.float32), bias])
    return classifier


@pytest.mark.parametrize("name, size", NETS)
def test_fine_cam_matches_gradient_tape_in_keras_and_onnx(name, size):
    fine_layer = NETWORKS[name].fine_cam_layer
    classifier = spread_classifier(name, size)
    images = np.random.default_rng(2).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    export_model = build_export_model(classifier, fine_cam_layer=fine_layer)
    probabilities, cam, keras_fine = export_model.predict(images, verbose=0)

    reference = gradient_tape_layercam(classifier, images, fine_layer)
    fine_grid = classifier.get_layer(BASE_LAYER).get_layer(fine_layer).output.shape[1:3]
    assert keras_fine.shape == (3, *fine_grid, 4) == reference.shape
    assert fine_grid[0] > cam.shape[1], "the fine map must be on a finer grid than cam"
    assert reference.max() > 0, "degenerate reference: every map is zero"
    np.testing.assert_allclose(normalise(keras_fine), normalise(reference), atol=1e-4)

    proto = convert_to_onnx(export_model, size)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_fine, onnx_cam = session.run(["cam_fine", "cam"], {"image": images})
    np.testing.assert_allclose(onnx_fine, keras_fine, atol=1e-4 * max(1.0, float(keras_fine.max())))
    np.testing.assert_allclose(onnx_cam, cam, atol=1e-4 * max(1.0, float(cam.max())))


def test_bridge_refuses_layers_it_cannot_differentiate_exactly():
    import keras

    from training.fine_cam import UnsupportedBridgeError, check_bridge

    with pytest.raises(UnsupportedBridgeError, match="non-overlapping"):
        check_bridge([keras.layers.MaxPooling2D(3, strides=2)])
    with pytest.raises(UnsupportedBridgeError, match="not supported"):
        check_bridge([keras.layers.BatchNormalization()])
    with pytest.raises(UnsupportedBridgeError, match="activation"):
        check_bridge([keras.layers.Conv2D(4, 3, activation="elu")])


def test_export_adds_the_fine_map_and_old_style_files_still_load(lenet_run, tmp_path):
    """`convnet-train export` writes cam_fine for LeNet-5 (conv1, 28x28) and the app reads it;
    `--no-fine-map` writes a file like the older ones, which the app loads with Grad-CAM only."""
    import onnx

    from convnet_common import model_format as fmt
    from desktop.core.model import load_model
    from training import cli

    fine_path, plain_path = tmp_path / "fine.onnx", tmp_path / "plain.onnx"
    assert cli.main(["export", str(lenet_run), "--out", str(fine_path)]) == 0
    assert cli.main(["export", str(lenet_run), "--out", str(plain_path), "--no-fine-map"]) == 0
    metadata = {entry.key: entry.value for entry in onnx.load(str(fine_path)).metadata_props}
    assert metadata[fmt.KEY_CAM_FINE_LAYER] == "conv1" and metadata[fmt.KEY_CAM_FINE_METHOD] == "layercam"
    plain_metadata = {entry.key for entry in onnx.load(str(plain_path)).metadata_props}
    assert fmt.KEY_CAM_FINE_LAYER not in plain_metadata

    images = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    model = load_model(fine_path, provider="cpu")
    assert model.info.has_cam and model.info.has_cam_fine and model.info.cam_fine_layer == "conv1"
    _, cam = model.predict(images)
    assert cam.shape == (2, 10, 10, 10) and model.fine_maps(images).shape == (2, 28, 28, 10)
    old = load_model(plain_path, provider="cpu")
    assert old.info.has_cam and not old.info.has_cam_fine and old.cam_fine_name is None
    assert [o.name for o in old.session.get_outputs()] == ["probabilities", "cam", "unknown_score"]
    np.testing.assert_allclose(old.predict(images)[1], cam, atol=1e-5)


DELETED_SHARE = 0.2
# What deleted pixels become: grey, as docs/activation-maps.md's forward-map study uses, and
# black, the digits' background (white strokes on black), which removes ink without adding any.
FILLS = {"grey": 128, "black": 0}


def _deleted(image: np.ndarray, saliency: np.ndarray, rng, fill: int) -> np.ndarray:
    """`image` with the DELETED_SHARE of pixels `saliency` (upsampled, ties broken at random) ranks highest set to `fill`."""
    import cv2

    height, width = image.shape[:2]
    upsampled = cv2.resize(saliency.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR).ravel()
    order = np.lexsort((rng.random(upsampled.size), -upsampled))
    out = image.reshape(-1, 3).copy()
    out[order[: int(DELETED_SHARE * upsampled.size)]] = fill
    return out.reshape(image.shape)


def test_fine_map_on_a_trained_lenet_is_finer_and_as_faithful(lenet_run, tmp_path):
    """The measurement docs/activation-maps.md reports: grid sizes, the deletion drop (top
    class's probability and log-odds when the 20 % of pixels a map ranks highest turn grey,
    or black) for Grad-CAM, LayerCAM and a random smooth map, and the cost of the extra output.
    Run with -s to see the figures."""
    import json
    import time

    from training import cli, data

    out = tmp_path / "fine.onnx"
    assert cli.main(["export", str(lenet_run), "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    split = json.loads((lenet_run / "split.json").read_text())
    images, truth = data.load_batch([data.Sample(path, label) for path, label in split["val"]], 32)
    probabilities, cam, fine = session.run(["probabilities", "cam", "cam_fine"], {"image": images})
    correct = np.flatnonzero(probabilities.argmax(axis=1) == truth)
    assert len(correct) >= 20, "the run must classify enough validation images to measure"
    rng = np.random.default_rng(0)

    def random_map(_i, _c):
        return rng.random((4, 4))

    maps = {
        "Grad-CAM (conv2, 10x10)": lambda i, c: cam[i, ..., c],
        "LayerCAM (conv1, 28x28)": lambda i, c: fine[i, ..., c],
        "random smooth map": random_map,
    }
    drops: dict[tuple[str, str], list[tuple[float, float]]] = {(m, f): [] for m in maps for f in FILLS}
    for i in correct:
        c = int(probabilities[i].argmax())
        for fill_name, fill in FILLS.items():
            batch = np.stack([_deleted(images[i], make(i, c), rng, fill) for make in maps.values()])
            after = session.run(["probabilities"], {"image": batch})[0][:, c]
            before = float(probabilities[i, c])
            for name, p in zip(maps, after, strict=True):
                logit = np.log(max(before, 1e-7) / max(1 - before, 1e-7)) - np.log(max(p, 1e-7) / max(1 - p, 1e-7))
                drops[name, fill_name].append((before - float(p), float(logit)))
    summary = {key: np.mean(values, axis=0) for key, values in drops.items()}

    def timed(outputs: list[str]) -> float:
        runs = []
        for _ in range(30):
            start = time.perf_counter()
            session.run(outputs, {"image": images[:1]})
            runs.append(time.perf_counter() - start)
        return float(np.median(runs)) * 1000

    base_ms, fine_ms = timed(["probabilities", "cam"]), timed(["probabilities", "cam", "cam_fine"])
    print(f"\n{len(correct)} correctly classified validation images of {len(truth)}; grid cells 28x28=784 vs 10x10=100")
    for (name, fill_name), (drop, logit) in summary.items():
        print(f"{name}, deleted to {fill_name}: mean probability drop {drop:.3f}, mean log-odds drop {logit:.2f}")
    print(f"one image: probabilities+cam {base_ms:.2f} ms, with cam_fine {fine_ms:.2f} ms")
    assert fine.shape[1:3] == (28, 28) and cam.shape[1:3] == (10, 10)
    layercam, random = summary["LayerCAM (conv1, 28x28)", "black"], summary["random smooth map", "black"]
    assert layercam[1] > 2 * random[1], "LayerCAM must find the ink the answer depends on far better than chance"


def test_int8_export_keeps_the_fine_map(lenet_run, tmp_path):
    """The fine map's ConvTranspose shares conv2's kernel; quantised per channel it broke the
    int8 conversion, so its nodes stay in float (training.precision.KEEP_FLOAT_NODES)."""
    from training import cli

    out = tmp_path / "int8.onnx"
    assert cli.main(["export", str(lenet_run), "--out", str(out), "--precision", "int8"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(6).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    (fine,) = session.run(["cam_fine"], {"image": images})
    assert fine.shape == (2, 28, 28, 10) and np.all(np.isfinite(fine)) and fine.max() > 0


@pytest.mark.parametrize("name", [name for name, info in NETWORKS.items() if info.fine_cam_layer])
def test_every_named_fine_layer_can_be_differentiated_exactly(name):
    """A network module that names a `fine_cam_layer` gets a chain the backward pass supports
    (a new network is still one file: this catches a layer name that cannot work)."""
    from training.fine_cam import bridge_layers

    info = NETWORKS[name]
    backbone = registry.get_backbone(name)
    base = backbone.build_base((info.min_image_size, info.min_image_size, backbone.input_channels), None)
    bridge = bridge_layers(base, info.fine_cam_layer)
    assert bridge, "the fine layer must come before the last conv layer"
    assert base.get_layer(info.fine_cam_layer).output.shape[1] > base.output.shape[1], "the fine map must be finer"
