"""The in-graph `cam` output equals Grad-CAM computed with tf.GradientTape, for every head
the trainer can build, after both go through ONNX Runtime / Keras respectively."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from training import registry
from training.export import convert_to_onnx
from training.model_builder import build_classifier, build_export_model, build_feature_model

pytestmark = pytest.mark.slow

HEADS = [
    pytest.param("lenet5", 32, registry.HeadOptions(), id="lenet5-avgpool-flatten-tanh120-tanh84"),
    pytest.param("mnist_convnet", 28, registry.HeadOptions(), id="mnist-flatten-relu64"),
    pytest.param("allconv", 32, registry.HeadOptions(), id="allconv-1x1conv-gap"),
    pytest.param("alexnet", 64, registry.HeadOptions(), id="alexnet-flatten-relu4096-dropout-relu4096"),
    pytest.param("googlenet", 32, registry.HeadOptions(), id="googlenet-gap-dropout-dense"),
    pytest.param("mobilenet_v2", 96, registry.HeadOptions(dropout=0.2), id="gap-dropout-dense"),
    pytest.param("mobilenet_v2", 96, registry.HeadOptions(dropout=0.0), id="gap-dense"),
    pytest.param(
        "mobilenet_v2", 96, registry.HeadOptions(hidden_units=32, hidden_activation="relu"), id="gap-relu32-dense"
    ),
    pytest.param(
        "mobilenet_v2", 96, registry.HeadOptions(hidden_units=16, hidden_activation="tanh"), id="gap-tanh16-dense"
    ),
]


def gradient_tape_gradcam(classifier, images: np.ndarray) -> np.ndarray:
    """Reference Grad-CAM (Selvaraju et al.): autodiff of each logit w.r.t. the feature map."""
    import tensorflow as tf

    feature_model = build_feature_model(classifier)
    pixels = tf.constant(images.astype(np.float32))
    maps = []
    for k in range(classifier.output_shape[-1]):
        with tf.GradientTape() as tape:
            features, logits = feature_model(pixels, training=False)
            score = logits[:, k]
        grads = tape.gradient(score, features)
        alpha = tf.reduce_mean(grads, axis=(1, 2))
        maps.append(tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, alpha)).numpy())
    return np.stack(maps, axis=-1)


def normalise(maps: np.ndarray) -> np.ndarray:
    peak = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peak > 0, peak, 1.0)


@pytest.mark.parametrize("backbone_name, size, head", HEADS)
def test_onnx_cam_matches_gradient_tape(backbone_name, size, head):
    import keras

    keras.utils.set_random_seed(5)
    backbone = registry.get_backbone(backbone_name)
    classifier = build_classifier(backbone, 4, size, weights=None, head=head)
    # Give the head weights with a spread like a trained one's, so maps are not trivial.
    from training.model_builder import head_of

    # The class layer's zero-ish initial spread would make every class map alike.
    class_layer = [layer for layer in head_of(classifier) if layer.get_weights()][-1]
    kernel, bias = class_layer.get_weights()
    class_layer.set_weights([np.random.default_rng(1).normal(0, 1, kernel.shape).astype(np.float32), bias])
    images = np.random.default_rng(2).integers(0, 256, (3, size, size, 3), dtype=np.uint8)

    proto = convert_to_onnx(build_export_model(classifier), size)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities, cam = session.run(["probabilities", "cam"], {"image": images})

    reference = gradient_tape_gradcam(classifier, images)
    assert cam.shape == reference.shape
    assert reference.max() > 0, "degenerate reference: every map is zero"
    np.testing.assert_allclose(normalise(cam), normalise(reference), atol=1e-4)
    np.testing.assert_allclose(probabilities, classifier.predict(images.astype(np.float32), verbose=0), atol=1e-5)


def test_gradcam_refuses_a_head_it_cannot_differentiate_exactly():
    import keras

    from training.gradcam import GradCam, UnsupportedHeadError

    with pytest.raises(UnsupportedHeadError, match="linear"):
        GradCam([keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(UnsupportedHeadError, match="not supported"):
        GradCam([keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(3)])
