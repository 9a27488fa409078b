"""Tiny models laid out like the ones people bring from other tools, made here (no downloads).

Each factory writes its model the way the tool does: a `.keras` file whose first layer is
Rescaling, a Teachable-Machine-shaped `keras_model.h5` (Sequential of a Sequential base
ending in GlobalAveragePooling2D and a Sequential Dense -> Dense softmax head, with
`groups: 1` written into its DepthwiseConv2D config as tf.keras 2 did) with
`labels.txt`, and a SavedModel with a Lobe-style `signature.json` and a string
`Prediction` output beside `Confidences`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 32
LOBE_LABELS = ["apple", "banana", "cherry"]


def images(low: float, high: float, count: int = 12, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Images of different colours and stripes in [low, high] (noise alone pools to the
    same features for every image, so an untrained model would give one class to all)."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0, 1, (count, 1, 1, 3))
    stripes = (np.arange(size)[None, :, None, None] // rng.integers(2, 9, (count, 1, 1, 1))) % 2
    pattern = 0.5 * colours + 0.3 * stripes * rng.uniform(0, 1, (count, 1, 1, 3))
    unit = np.clip(pattern + rng.uniform(0, 0.2, (count, size, size, 3)), 0, 1)
    return (low + (high - low) * unit).astype(np.float32)


def spread_class_layer(dense, seed: int, dense_inputs: np.ndarray) -> None:
    """Weights with a trained-like spread, and a bias that centres each class score on
    `dense_inputs`, so untrained models still give different classes to different images."""
    kernel = np.random.default_rng(seed).normal(0, 4, tuple(dense.kernel.shape)).astype(np.float32)
    bias = -(np.asarray(dense_inputs) @ kernel).mean(axis=0)
    dense.set_weights([kernel, bias.astype(np.float32)])


def make_rescaling_keras(path: Path, classes: int = 3, rescaling: bool = True, softmax: bool = False) -> Path:
    """A functional .keras/.h5 model; by default it takes 0-255 pixels (Rescaling first)
    and gives logits. `rescaling=False, softmax=True` gives the opposite facts."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(11)
    pixels = keras.Input((SIZE, SIZE, 3), name="photo")
    x = layers.Rescaling(1 / 255, name="scale")(pixels) if rescaling else pixels
    x = layers.Conv2D(8, 3, activation="relu", name="conv_a")(x)
    x = layers.Conv2D(12, 3, strides=2, activation="relu", name="conv_b")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2)(x)
    logits = layers.Dense(classes, name="logits")(x)
    output = layers.Activation("softmax", name="probabilities")(logits) if softmax else logits
    model = keras.Model(pixels, output)
    probe = images(0, 255 if rescaling else 1, 64, seed=99)
    if not rescaling:
        probe = probe * 2 - 1
    pooled = keras.Model(pixels, model.get_layer("logits").input)(probe)
    spread_class_layer(model.get_layer("logits"), 3, pooled)
    model.save(path)
    return path


def _add_groups_to_depthwise(config: dict | list) -> int:
    """Write `groups: 1` into every DepthwiseConv2D config, as tf.keras 2 saved them."""
    count = 0
    if isinstance(config, dict):
        if config.get("class_name") == "DepthwiseConv2D":
            config["config"]["groups"] = 1
            count += 1
        for value in config.values():
            count += _add_groups_to_depthwise(value)
    elif isinstance(config, list):
        for value in config:
            count += _add_groups_to_depthwise(value)
    return count


MOBILENET_SIZE = 96


def _mobilenet_base():
    """Teachable Machine's real base: a functional MobileNetV2 (alpha 0.35 here, to stay
    small) cut at out_relu, inside a Sequential with the pooling (random weights)."""
    import keras
    from keras import layers

    mobilenet = keras.applications.MobileNetV2(
        input_shape=(MOBILENET_SIZE, MOBILENET_SIZE, 3), alpha=0.35, include_top=False, weights=None
    )
    model1 = keras.Model(mobilenet.inputs, mobilenet.get_layer("out_relu").output, name="model1")
    return keras.Sequential([model1, layers.GlobalAveragePooling2D()], name="sequential_1")


def make_teachable_machine(folder: Path, labels: tuple[str, ...] = ("cat", "dog"), mobilenet: bool = False) -> Path:
    """keras_model.h5 + labels.txt shaped like Teachable Machine's Keras export; a tiny
    Sequential base, or with `mobilenet` the functional MobileNetV2 base TM really uses."""
    import h5py
    import keras
    from keras import layers

    keras.utils.set_random_seed(12)
    folder.mkdir(parents=True, exist_ok=True)
    size = MOBILENET_SIZE if mobilenet else SIZE
    base = (
        _mobilenet_base()
        if mobilenet
        else keras.Sequential(
            [
                layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="Conv1"),
                layers.DepthwiseConv2D(3, padding="same", name="expanded_conv_depthwise"),
                layers.ReLU(6.0, name="expanded_conv_depthwise_relu"),
                layers.Conv2D(16, 1, activation="relu", name="out_relu"),
                layers.GlobalAveragePooling2D(name="global_average_pooling2d_GlobalAveragePooling2D1"),
            ],
            name="sequential_1",
        )
    )
    head = keras.Sequential(
        [
            layers.Dense(10, activation="relu", name="dense_Dense1"),
            layers.Dense(len(labels), activation="softmax", name="dense_Dense2"),
        ],
        name="sequential_3",
    )
    model = keras.Sequential([keras.Input((size, size, 3)), base, head], name="sequential_4")
    hidden = head.layers[0](base(images(-1, 1, 64, seed=99, size=size)))
    spread_class_layer(head.layers[-1], 4, hidden)
    h5 = folder / "keras_model.h5"
    model.save(h5)
    with h5py.File(h5, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        assert _add_groups_to_depthwise(config) >= 1, "the fixture must reproduce Teachable Machine's groups key"
        file.attrs["model_config"] = json.dumps(config)
    (folder / "labels.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(labels)), encoding="utf-8")
    return folder


def make_teachable_machine_savedmodel(folder: Path) -> Path:
    """Teachable Machine's SavedModel export (converted_savedmodel/: model.savedmodel/ +
    labels.txt), made from the Keras-export fixture's model."""
    import shutil

    from training.adopt.keras_source import load_keras_model

    keras_export = make_teachable_machine(folder.parent / f"{folder.name}-keras")
    folder.mkdir(parents=True)
    model = load_keras_model(keras_export / "keras_model.h5")
    model.export(str(folder / "model.savedmodel"), format="tf_saved_model", verbose=False)
    shutil.copy(keras_export / "labels.txt", folder / "labels.txt")
    return folder


def make_lobe_savedmodel(folder: Path, labels: list[str] = LOBE_LABELS) -> Path:
    """A SavedModel whose serving signature takes `Image` (0-1 floats) and returns the
    softmax `Confidences` and the string `Prediction`, with Lobe's signature.json."""
    import tensorflow as tf

    rng = np.random.default_rng(13)

    class LobeLike(tf.Module):
        def __init__(self):
            super().__init__()
            self.conv = tf.Variable(rng.normal(0, 0.5, (3, 3, 3, 6)).astype(np.float32))
            self.dense = tf.Variable(rng.normal(0, 1, (6, len(labels))).astype(np.float32))
            self.bias = tf.Variable(np.zeros(len(labels), np.float32))
            self.names = tf.constant(labels)

        def logits(self, image):
            features = tf.nn.relu(tf.nn.conv2d(image, self.conv, strides=2, padding="SAME"))
            return tf.matmul(tf.reduce_mean(features, axis=(1, 2)), self.dense) + self.bias

        @tf.function(input_signature=[tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="Image")])
        def serve(self, image):
            confidences = tf.nn.softmax(self.logits(image))
            prediction = tf.gather(self.names, tf.argmax(confidences, axis=1))
            return {"Confidences": confidences, "Prediction": prediction}

    module = LobeLike()
    module.bias.assign(-tf.reduce_mean(module.logits(images(0, 1, 64, seed=99)), axis=0))
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    signature = {
        "doc_id": "fixture",
        "doc_name": "fruit",
        "format": "tf",
        "filename": "saved_model.pb",
        "tags": ["serve"],
        "export_model_version": 1,
        "classes": {"Label": list(labels)},
        "inputs": {"Image": {"dtype": "float32", "shape": [None, SIZE, SIZE, 3], "name": "Image:0"}},
        "outputs": {
            "Confidences": {"dtype": "float32", "shape": [None, len(labels)], "name": "Identity:0"},
            "Prediction": {"dtype": "string", "shape": [None], "name": "Identity_1:0"},
        },
    }
    (folder / "signature.json").write_text(json.dumps(signature), encoding="utf-8")
    return folder


def run_graph(proto, batch: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})


def make_lobe_onnx(folder: Path, labels: list[str] = LOBE_LABELS) -> Path:
    """Lobe's ONNX export: model.onnx (NHWC float input `Image`, softmax out) + signature.json."""
    import keras
    import tensorflow as tf
    import tf2onnx
    from keras import layers

    keras.utils.set_random_seed(14)
    folder.mkdir(parents=True, exist_ok=True)
    image = keras.Input((SIZE, SIZE, 3), name="Image")
    x = layers.Conv2D(6, 3, strides=2, activation="relu")(image)
    pooled = layers.GlobalAveragePooling2D()(x)
    dense = layers.Dense(len(labels), name="logits")
    model = keras.Model(image, layers.Softmax()(dense(pooled)))
    spread_class_layer(dense, 5, keras.Model(image, pooled)(images(0, 1, 64, seed=99)))
    spec = (tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="Image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=13)
    (folder / "model.onnx").write_bytes(proto.SerializeToString())
    signature = {
        "format": "onnx",
        "filename": "model.onnx",
        "export_model_version": 1,
        "classes": {"Label": list(labels)},
        "inputs": {"Image": {"dtype": "float32", "shape": [None, SIZE, SIZE, 3], "name": "Image"}},
        "outputs": {
            "Confidences": {"dtype": "float32", "shape": [None, len(labels)], "name": proto.graph.output[0].name}
        },
    }
    (folder / "signature.json").write_text(json.dumps(signature), encoding="utf-8")
    return folder
