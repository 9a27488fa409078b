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
