"""`convnet-train pretrained`: the stock 1000-class ImageNet classifier as a model file.

The first thing the course notes do with a pretrained network is classify a photo with
its own ImageNet top. This rebuilds that network as a ConvNet Studio chain (in-graph
preprocessing, base up to the last 4-D feature map, the original top with its softmax
split off so Grad-CAM sees logits) and exports it with the 1,000 class names.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from convnet_common.safe_json import read_json
from training import registry
from training.export import ExportError, ExportReport, convert_to_onnx, model_metadata, set_metadata, write_verified
from training.model_builder import BASE_LAYER, LOGITS_LAYER, PROBABILITIES_LAYER, build_export_model
from training.weights import WeightsUnavailableError, download_failure, is_download_failure

CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"  # the hash keras.applications itself checks
IMAGENET_TRAINING = {
    "dataset": "ImageNet ILSVRC-2012 (Keras's published weights)",
    "image_count": 1_281_167,
    "weights": "imagenet",
    "held_out_split": "not measured here; see the keras.applications documentation",
}


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names, through Keras's own download and cache."""
    try:
        # The hash makes Keras download again over a file a killed download left truncated.
        path = keras.utils.get_file(
            "imagenet_class_index.json", CLASS_INDEX_URL, cache_subdir="models", file_hash=CLASS_INDEX_MD5
        )
    except Exception as error:  # Keras raises plain Exception for a failed download
        if is_download_failure(error):
            raise download_failure("the ImageNet class names", error) from None
        raise
    index = read_json(path, 1_000_000, "the ImageNet class index")  # about 35 kB; a cache file could be anything
    return [index[str(i)][1] for i in range(len(index))]


def stock_classifier(backbone: registry.Backbone, weights: str | None = "imagenet") -> keras.Model:
    """The keras.applications network with its top, rebuilt as a ConvNet Studio chain."""
    if backbone.keras_application is None:
        raise ExportError(f"{backbone.name} is built from scratch here and has no ImageNet classifier")
    constructor = getattr(keras.applications, backbone.keras_application)
    try:
        full = constructor(include_top=True, weights=weights)
    except Exception as error:
        if weights == "imagenet" and is_download_failure(error):
            raise download_failure(f"the ImageNet weights for {backbone.name}", error) from None
        raise
    # The feature map is the last 4-D output (VGG: after its last max-pool, which the
    # exported Grad-CAM cannot differentiate through); the rest is the top.
    feature_index = max(i for i, layer in enumerate(full.layers) if len(layer.output.shape) == 4)
    base = keras.Model(full.input, full.layers[feature_index].output, name=BASE_LAYER)
    top = full.layers[feature_index + 1 :]
    predictions = top[-1]
    logits = keras.layers.Dense(predictions.units, name=LOGITS_LAYER)
    size = full.input_shape[1]
    pixels = keras.Input((size, size, 3), name="pixels")
    x = pixels
    for layer in registry.preprocessing_layers(backbone):
        x = layer(x)
    x = base(x, training=False)
    for layer in top[:-1]:
        x = layer(x)
    x = logits(x)
    logits.set_weights(predictions.get_weights())
    probabilities = keras.layers.Activation("softmax", name=PROBABILITIES_LAYER)(x)
    return keras.Model(pixels, probabilities, name=f"{backbone.name}_imagenet")


def check_images(size: int, count: int = 8) -> np.ndarray:
    """Images to compare ONNX Runtime with Keras on: smooth gradients, blobs and noise."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    images = [
        np.stack(
            [ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), np.full((size, size), 128, np.float32)], -1
        )
    ]
    while len(images) < count:
        images.append(rng.integers(0, 256, (size, size, 3)).astype(np.float32))
    return np.clip(np.stack(images), 0, 255).astype(np.uint8)


def export_pretrained(
    name: str,
    out: str | Path,
    weights: str | None = "imagenet",
    class_names: list[str] | None = None,
    tolerance: float = 1e-4,
) -> ExportReport:
    """Export NAME's stock ImageNet classifier. `weights`/`class_names` exist for tests,
    which cannot download; the command line always uses Keras's ImageNet weights."""
    backbone = registry.get_backbone(name)
    if backbone.keras_application is None:
        raise ExportError(f"{backbone.name} is built from scratch here and has no ImageNet classifier")
    labels = class_names if class_names is not None else imagenet_class_names()
    classifier = stock_classifier(backbone, weights)
    if len(labels) != classifier.output_shape[-1]:
        raise ExportError(f"{len(labels)} class names for {classifier.output_shape[-1]} outputs")
    size = classifier.input_shape[1]
    export_model = build_export_model(classifier)
    proto = convert_to_onnx(export_model, size)
    facts = dict(IMAGENET_TRAINING, weights=weights or "none")
    cam_layer = classifier.get_layer(BASE_LAYER).layers[-1].name
    set_metadata(proto, model_metadata(labels, size, backbone, facts, {}, cam_layer=cam_layer))
    return write_verified(
        proto, export_model, check_images(size), Path(out), tolerance, "fp32", None, "generated images"
    )


__all__ = ["export_pretrained", "imagenet_class_names", "stock_classifier", "WeightsUnavailableError"]
