"""Assemble classifiers from registry parts, and the graphs derived from them for export.

A classifier is a straight chain: pixels (float RGB 0..255) -> preprocessing -> base
(named "base") -> head -> logits -> softmax. Keeping it a chain lets export re-call the
same layers on a uint8 input and tap the feature map without Keras's nested-model
output lookups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
from keras import layers

from training import registry
from training.config import parse_unfreeze
from training.fine_cam import fine_cam_output
from training.gradcam import GradCam
from training.registry import Backbone, HeadOptions
from training.weights import build_base_with_weights

BASE_LAYER = "base"
LOGITS_LAYER = "logits"
PROBABILITIES_LAYER = "probabilities"
TAPS_MODEL = "base_taps"


def build_classifier(
    backbone: Backbone,
    num_classes: int,
    image_size: int,
    weights: str | None,
    head: HeadOptions = HeadOptions(),  # noqa: B008 - a frozen dataclass: one shared default is safe
    normalize_polarity: bool = False,
    freeze_base: bool | None = None,
) -> keras.Model:
    """The classifier chain. `freeze_base=None` takes the registry's default (keras.applications
    bases frozen, as a pretrained base is for stage 1); the trainer passes False for one with
    random weights, which must train whole with BatchNorm in training mode."""
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
    # float32 even under mixed precision (training.mixed_precision): a float16 softmax loses small probabilities.
    probabilities = layers.Activation("softmax", name=PROBABILITIES_LAYER, dtype="float32")(x)
    return keras.Model(pixels, probabilities, name=f"{backbone.name}_classifier")


def _chain(classifier: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in classifier.layers if not isinstance(layer, keras.layers.InputLayer)]


def preprocessing_of(classifier: keras.Model) -> list[keras.layers.Layer]:
    """The layers between the pixels and the base (the registry's preprocessing)."""
    chain = _chain(classifier)
    return chain[: [layer.name for layer in chain].index(BASE_LAYER)]


def head_of(classifier: keras.Model) -> list[keras.layers.Layer]:
    """The layers between the base and the softmax, logits included."""
    chain = _chain(classifier)
    names = [layer.name for layer in chain]
    start, end = names.index(BASE_LAYER) + 1, names.index(LOGITS_LAYER) + 1
    return chain[start:end]


def features_and_logits(classifier: keras.Model, inputs) -> tuple:
    """Re-run the classifier chain on `inputs`, returning (feature map, logits, probabilities)."""
    features, _, logits, probabilities = chain_outputs(classifier, inputs)
    return features, logits, probabilities


def chain_outputs(classifier: keras.Model, inputs) -> tuple:
    """Re-run the classifier chain on `inputs`: (feature map, penultimate features (the
    logits layer's input), logits, probabilities) — what the unknown score reads too."""
    x = inputs
    features = penultimate = logits = None
    for layer in _chain(classifier):
        if layer.name == LOGITS_LAYER:
            penultimate = x
        x = layer(x, training=False) if layer.name == BASE_LAYER else layer(x)
        if layer.name == BASE_LAYER:
            features = x
        elif layer.name == LOGITS_LAYER:
            logits = x
    return features, penultimate, logits, x


def build_feature_model(classifier: keras.Model) -> keras.Model:
    """float pixels -> [feature map, logits]; what Grad-CAM's GradientTape reference needs.

    Only the tests call it (test_gradcam's reference Grad-CAM, test_networks' weights
    check); it stays here, beside `features_and_logits`, so the reference differentiates
    exactly the graph the export uses rather than a copy that could drift from it.
    """
    pixels = keras.Input(classifier.input_shape[1:], name="pixels")
    features, logits, _ = features_and_logits(classifier, pixels)
    return keras.Model(pixels, [features, logits])


def build_export_model(
    classifier: keras.Model, temperature: float = 1.0, unknown_score=None, fine_cam_layer: str | None = None
) -> keras.Model:
    """uint8 RGB NHWC -> [probabilities, cam], the graph that becomes the ONNX file.

    `temperature` (training.calibration) divides the logits before the softmax, so every
    reader of the file gets calibrated probabilities; the ranking, and the cam (built
    from the head's own weights, upstream of the softmax), stay exactly as they were.
    At 1.0 the classifier's own softmax is used and the graph is the uncalibrated one.
    `unknown_score` (training.unknown_score.score_layer) adds a third output computed from
    the same feature map and penultimate features, so one run gives the probabilities and
    the score. `fine_cam_layer` (a layer inside the base) adds LayerCAM maps at that
    earlier, finer layer (training.fine_cam) as the last output, `cam_fine`.
    """
    image = keras.Input(classifier.input_shape[1:], dtype="uint8", name="image")
    pixels = keras.ops.cast(image, "float32")
    features, penultimate, logits, probabilities = chain_outputs(classifier, pixels)
    if temperature != 1.0:
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number above 0, got {temperature}")
        scaled = layers.Rescaling(1.0 / temperature, name="temperature")(logits)
        probabilities = layers.Activation("softmax", name="calibrated_probabilities")(scaled)
    cam = GradCam(head_of(classifier), name="cam")(features)
    outputs = [probabilities, cam] + ([unknown_score(features, penultimate)] if unknown_score is not None else [])
    if fine_cam_layer:
        outputs.append(fine_cam_output(classifier, pixels, fine_cam_layer, head_of(classifier), BASE_LAYER))
    return keras.Model(image, outputs, name="export")


@dataclass
class TrainingGraph:
    """What to fit: `model` (the classifier itself, or a multi-output view sharing its
    weights) and the per-output loss weights to compile it with."""

    model: keras.Model
    loss_weights: dict[str, float] = field(default_factory=lambda: {PROBABILITIES_LAYER: 1.0})
    main_output: str = PROBABILITIES_LAYER

    @property
    def output_names(self) -> list[str]:
        return list(self.loss_weights)

    def targets(self, labels):
        """The labels in the form `model.fit` wants: the same labels for every output."""
        if len(self.loss_weights) == 1:
            return labels
        return {name: labels for name in self.loss_weights}


def build_training_model(classifier: keras.Model, backbone: Backbone, num_classes: int) -> TrainingGraph:
    """The graph to train: the classifier, plus auxiliary classifiers where the backbone has them.

    With auxiliary taps (GoogLeNet) the result is pixels -> {"probabilities", "aux1", ...}:
    it re-calls the classifier's own preprocessing, base and head layers, so fitting it
    updates exactly the weights the classifier (and so the exported model) uses, while the
    auxiliary layers live only in the training graph. The base is tapped through a
    multi-output view of it (same layers), called once.
    """
    if not backbone.aux_taps:
        return TrainingGraph(classifier, {PROBABILITIES_LAYER: 1.0})
    base = classifier.get_layer(BASE_LAYER)
    taps_model = keras.Model(
        base.input, [base.output, *[base.get_layer(tap).output for tap in backbone.aux_taps]], name=TAPS_MODEL
    )
    pixels = keras.Input(classifier.input_shape[1:], name="pixels")
    chain = _chain(classifier)
    names = [layer.name for layer in chain]
    x = pixels
    for layer in chain[: names.index(BASE_LAYER)]:
        x = layer(x)
    features, *taps = taps_model(x, training=False) if not base.trainable else taps_model(x)
    x = features
    for layer in chain[names.index(BASE_LAYER) + 1 :]:
        x = layer(x)
    outputs = {PROBABILITIES_LAYER: x}
    loss_weights = {PROBABILITIES_LAYER: 1.0}
    for index, tap in enumerate(taps):
        y = tap
        for layer in backbone.build_aux_head(num_classes, index, tuple(tap.shape[1:])):
            y = layer(y)
        name = f"aux{index + 1}"
        outputs[name] = y
        loss_weights[name] = backbone.aux_loss_weight
    model = keras.Model(pixels, outputs, name=f"{backbone.name}_training")
    return TrainingGraph(model, loss_weights)


def set_trainable_for_stage(classifier: keras.Model, frozen_base: bool, stage: int, unfreeze: str) -> int:
    """Stage 1 freezes a pretrained base (`frozen_base`) or trains a random one whole;
    stage 2 unfreezes a pretrained base's top layers but keeps every BatchNorm frozen
    (the base is called with training=False, so they also stay in inference mode).
    Returns how many base layers are trainable."""
    base = classifier.get_layer(BASE_LAYER)
    if stage == 1:
        base.trainable = not frozen_base
        return len(base.layers) if base.trainable else 0
    amount = parse_unfreeze(unfreeze)
    layers = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    count = max(1, math.ceil(amount * len(layers))) if isinstance(amount, float) else min(amount, len(layers))
    base.trainable = True
    for index, layer in enumerate(layers):
        layer.trainable = index >= len(layers) - count and not isinstance(layer, keras.layers.BatchNormalization)
    return count
