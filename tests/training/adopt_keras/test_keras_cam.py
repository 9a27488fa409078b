"""Adopted Keras models with a pooling -> dense head get in-graph maps equal to Grad-CAM
computed with tf.GradientTape on the ORIGINAL model (not on the graph keras_cam builds),
as tests/training/test_gradcam.py checks for our own exports."""

from __future__ import annotations

import numpy as np
import pytest
from foreign_keras_models import MOBILENET_SIZE, SIZE, images, make_rescaling_keras, make_teachable_machine, run_graph

pytestmark = pytest.mark.slow

# Measured here: normalised maps differ from the GradientTape reference by at most 1.0e-6
# (TM-shaped, tiny base), 1.2e-6 (TM-shaped, MobileNetV2 base) and 3.2e-6 (functional);
# 1e-4 is the tolerance our own exports are held to.
MAP_TOLERANCE = 1e-4


def gradient_tape_gradcam(features_and_logits, inputs: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.): the feature map weighted by the spatial mean of each
    class score's gradient with respect to it, then ReLU."""
    import tensorflow as tf

    pixels = tf.constant(inputs)
    maps = []
    features, logits = features_and_logits(pixels)
    for k in range(logits.shape[-1]):
        with tf.GradientTape() as tape:
            features, logits = features_and_logits(pixels, tape)
            score = logits[:, k]
        alpha = tf.reduce_mean(tape.gradient(score, features), axis=(1, 2))
        maps.append(tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, alpha)).numpy())
    return np.stack(maps, axis=-1)


def normalise(maps: np.ndarray) -> np.ndarray:
    peak = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peak > 0, peak, 1.0)


def check_maps(source, reference_maps: np.ndarray, inputs: np.ndarray) -> None:
    prediction, cam = run_graph(source.cam_graph, inputs)
    np.testing.assert_allclose(prediction, source.reference(inputs), atol=1e-5, rtol=0)
    assert cam.shape == reference_maps.shape
    assert reference_maps.max() > 0, "degenerate reference: every map is zero"
    classes = cam.shape[-1]
    assert not np.allclose(normalise(cam)[..., 0], normalise(cam)[..., classes - 1]), "all class maps alike"
    np.testing.assert_allclose(normalise(cam), normalise(reference_maps), atol=MAP_TOLERANCE)


@pytest.mark.parametrize("mobilenet", [False, True], ids=["tiny-sequential-base", "mobilenet_v2-functional-base"])
def test_teachable_machine_maps_equal_gradient_tape_gradcam(tmp_path, mobilenet):
    import tensorflow as tf

    from training.adopt.keras_source import load_keras_model
    from training.adopt.teachable_machine import read_teachable_machine

    teachable_machine = make_teachable_machine(tmp_path / "tm", mobilenet=mobilenet)
    source = read_teachable_machine(teachable_machine)
    assert source.cam_layer == "out_relu"
    original = load_keras_model(teachable_machine / "keras_model.h5")
    base, head = original.layers  # Sequential(base ending in pooling), Sequential(Dense, Dense softmax)
    feature_layers, hidden, classes = base.layers[:-1], head.layers[0], head.layers[1]

    def features_and_logits(pixels, tape=None):
        x = pixels
        for layer in feature_layers:
            x = layer(x, training=False)
        if tape is not None:
            tape.watch(x)
        logits = tf.matmul(hidden(tf.reduce_mean(x, axis=(1, 2))), classes.kernel) + classes.bias
        return x, logits

    inputs = images(-1, 1, 8, seed=21, size=MOBILENET_SIZE if mobilenet else SIZE)
    check_maps(source, gradient_tape_gradcam(features_and_logits, inputs), inputs)


@pytest.mark.parametrize("softmax", [False, True], ids=["dense-logits", "dense-then-softmax-activation"])
def test_functional_model_maps_equal_gradient_tape_gradcam(tmp_path, softmax):
    import keras

    from training.adopt.keras_source import read_keras_source

    path = make_rescaling_keras(tmp_path / "model.keras", softmax=softmax)
    source = read_keras_source(path)
    assert source.cam_layer == "conv_b"
    original = keras.models.load_model(path)
    inner = keras.Model(original.inputs, [original.get_layer("conv_b").output, original.get_layer("logits").output])

    def features_and_logits(pixels, tape=None):
        return inner(pixels, training=False)

    inputs = images(0, 255, 8, seed=22)
    check_maps(source, gradient_tape_gradcam(features_and_logits, inputs), inputs)


def test_models_without_a_pooling_dense_head_get_no_in_graph_maps(tmp_path):
    import keras
    from keras import layers

    from training.adopt.keras_source import NO_CAM_NOTE, read_keras_source

    keras.utils.set_random_seed(3)
    for name, tail in {
        "flatten": [layers.Flatten(), layers.Dense(3, activation="softmax")],
        "max-pooling": [layers.GlobalMaxPooling2D(), layers.Dense(3)],
    }.items():
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), layers.Conv2D(4, 3, strides=4), *tail])
        model.save(tmp_path / f"{name}.keras")
        source = read_keras_source(tmp_path / f"{name}.keras")
        assert source.cam_graph is None and source.cam_layer == "", name
        assert any(note.startswith(NO_CAM_NOTE) for note in source.notes), name
        inputs = images(0, 1, 4)
        np.testing.assert_allclose(run_graph(source.graph, inputs)[0], source.reference(inputs), atol=1e-5)
