"""Assemble classifiers from registry parts, and the graphs derived from them for export.

A classifier is a straight chain: pixels (float RGB 0..255) -> preprocessing -> base
(named "base") -> head -> logits -> softmax. Keeping it a chain lets export re-call the
same layers on a uint8 input and tap the feature map without Keras's nested-model
output lookups.
"""

from __future__ import annotations

import keras
from keras import layers

from training import registry
from training.gradcam import GradCam
from training.registry import Backbone, HeadOptions
from training.weights import build_base_with_weights

BASE_LAYER = "base"
LOGITS_LAYER = "logits"
PROBABILITIES_LAYER = "probabilities"


def build_classifier(
    backbone: Backbone,
    num_classes: int,
    image_size: int,
    weights: str | None,
    head: HeadOptions = HeadOptions(),
    normalize_polarity: bool = False,
    freeze_base: bool | None = None,
) -> keras.Model:
    if image_size < backbone.min_image_size:
        raise ValueError(f"{backbone.name} needs images of at least {backbone.min_image_size} pixels, got {image_size}")
    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    x = pixels
    for layer in registry.preprocessing_layers(backbone, normalize_polarity):
        x = layer(x)
    base = build_base_with_weights(backbone, (image_size, image_size, backbone.input_channels), weights)
    frozen = backbone.frozen_base if freeze_base is None else freeze_base
    base.trainable = not frozen
    # training=False keeps a frozen base's BatchNorm layers in inference mode (Keras
    # transfer-learning guide); a from-scratch base trains normally.
    x = base(x, training=False) if frozen else base(x)
    for layer in registry.head_layers(backbone, num_classes, head):
        x = layer(x)
    probabilities = layers.Activation("softmax", name=PROBABILITIES_LAYER)(x)
    return keras.Model(pixels, probabilities, name=f"{backbone.name}_classifier")


def _chain(classifier: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in classifier.layers if not isinstance(layer, keras.layers.InputLayer)]


def head_of(classifier: keras.Model) -> list[keras.layers.Layer]:
    """The layers between the base and the softmax, logits included."""
    chain = _chain(classifier)
    names = [layer.name for layer in chain]
    start, end = names.index(BASE_LAYER) + 1, names.index(LOGITS_LAYER) + 1
    return chain[start:end]


def features_and_logits(classifier: keras.Model, inputs) -> tuple:
    """Re-run the classifier chain on `inputs`, returning (feature map, logits, probabilities)."""
    x = inputs
    features = logits = None
    for layer in _chain(classifier):
        x = layer(x, training=False) if layer.name == BASE_LAYER else layer(x)
        if layer.name == BASE_LAYER:
            features = x
        elif layer.name == LOGITS_LAYER:
            logits = x
    return features, logits, x


def build_feature_model(classifier: keras.Model) -> keras.Model:
    """float pixels -> [feature map, logits]; what Grad-CAM's GradientTape reference needs."""
    pixels = keras.Input(classifier.input_shape[1:], name="pixels")
    features, logits, _ = features_and_logits(classifier, pixels)
    return keras.Model(pixels, [features, logits])


def build_export_model(classifier: keras.Model) -> keras.Model:
    """uint8 RGB NHWC -> [probabilities, cam], the graph that becomes the ONNX file."""
    image = keras.Input(classifier.input_shape[1:], dtype="uint8", name="image")
    pixels = keras.ops.cast(image, "float32")
    features, _, probabilities = features_and_logits(classifier, pixels)
    cam = GradCam(head_of(classifier), name="cam")(features)
    return keras.Model(image, [probabilities, cam], name="export")
