"""Read a Keras `.keras` / `.h5` image classifier as an adoption source.

The original is converted to float ONNX with tf2onnx's from_keras and an explicit input
signature (the path that works for Keras 3 models, EfficientNet included; from_function
and model.export break it). The reference is the Keras model itself, so the pipeline's
check compares the adopted file with the model the user brought, not with our copy.
What the file shows is reported: channels-last layout and size from the input, logits or
probabilities from the last layer's activation, 0-255 input when the model starts with a
Rescaling/Normalization layer, and labels from a labels.txt beside the file. A
GlobalAveragePooling2D -> Dense head also gets the in-graph activation maps (keras_cam).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from training.adopt.labels import label_file_beside, read_label_file
from training.adopt.source import KIND_KERAS, AdoptError, AdoptSource, Detected

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
INPUT_NAME = "pixels"
PREDICTION_OUTPUT = "scores"
CAM_OUTPUT = "cam"
REFERENCE_BATCH = 32
NO_CAM_NOTE = "no activation maps from the graph: the app computes them from forward passes"
ZERO_TO_255 = "the model starts with a {layer} layer, so it takes 0-255 pixels: mean 0, std 1/255 (about 0.00392)"


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _legacy_custom_objects() -> dict:
    """Stand-ins for layers whose old (tf.keras 2) configs Keras 3 refuses.

    Teachable Machine's keras_model.h5 writes `groups: 1` into every DepthwiseConv2D
    config (tf.keras inherited it from Conv2D); Keras 3's DepthwiseConv2D rejects the
    keyword, so the file does not load ("Unrecognized keyword arguments passed to
    DepthwiseConv2D: {'groups': 1}", a widely reported Teachable Machine problem). A
    depthwise convolution has one group per channel whatever that number says.
    """
    import keras

    class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
        def __init__(self, *args, groups=None, **kwargs):
            super().__init__(*args, **kwargs)

    return {"DepthwiseConv2D": DepthwiseConv2D}


def describe_load_error(error: BaseException) -> str:
    """One line for a file Keras cannot load, naming the layer class when that is why."""
    text = str(error)
    match = re.search(r"Could not locate class '([^']+)'", text) or re.search(r"Unknown layer: '?([\w.]+)", text)
    if match:
        return (
            f"layer class {match.group(1)} is not part of Keras and the file holds no code for it; "
            "save the model without custom layers or export it to ONNX and adopt that"
        )
    if "Lambda" in text and "safe_mode" in text:
        return "the model has a Lambda layer (Python code), which is not loaded for safety; export it to ONNX and adopt that"
    return f"Keras cannot load it: {_first_line(error)}"


def load_keras_model(path: Path):
    """The model in a .keras/.h5 file, without compiling it or running code stored in it."""
    import keras

    if not path.is_file():
        raise AdoptError(f"{path}: no such file")
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise AdoptError(f"{path.name}: a Keras model file ends in {', '.join(KERAS_SUFFIXES)}")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True, custom_objects=_legacy_custom_objects())
    except Exception as error:  # noqa: BLE001 - Keras raises many types for a bad file; each becomes one line
        raise AdoptError(f"{path.name}: {describe_load_error(error)}") from None


def image_input_shape(model) -> tuple:
    """[N, H, W, 3] of the one image input, or AdoptError saying what the model has."""
    if len(model.inputs) != 1:
        names = ", ".join(str(getattr(t, "name", "?")) for t in model.inputs)
        raise AdoptError(f"the model has {len(model.inputs)} inputs ({names}); adopt needs one image input")
    tensor = model.inputs[0]
    shape = tuple(tensor.shape)
    if len(shape) != 4 or shape[-1] != 3 or "float" not in str(tensor.dtype):
        raise AdoptError(
            f"the model's input is {tensor.dtype} {list(shape)}; adopt needs one float image input "
            "[N, height, width, 3] (RGB, channels last)"
        )
    return shape


def class_count(model) -> int:
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2 or not shape[1]:
        raise AdoptError(f"the model's output is {list(shape)}; adopt needs class scores [N, classes]")
    return int(shape[1])


def _name_outputs(proto, names: list[str]) -> None:
    from onnx import helper

    for output, name in zip(proto.graph.output, names):
        if output.name != name:
            proto.graph.node.append(helper.make_node("Identity", [output.name], [name], name=f"rename_{name}"))
            output.name = name


def functional_wrapper(model, shape: tuple):
    """The model called on a fresh named input: tf2onnx's from_keras fails on some loaded
    Sequential models (KeyError on an internal keras_tensor name) but not on this."""
    import keras

    pixels = keras.Input(tuple(shape[1:]), name=INPUT_NAME)
    output = model(pixels)
    return keras.Model(pixels, output[0] if isinstance(output, (list, tuple)) else output)


def keras_to_onnx(model, shape: tuple, output_names: list[str]):
    """tf2onnx.convert.from_keras with a named float32 NHWC input."""
    import tensorflow as tf
    import tf2onnx

    from convnet_common import model_format as fmt
    from training.onnx_tools import fold_initializer_shapes

    signature = (tf.TensorSpec((None, *shape[1:]), tf.float32, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=fmt.OPSET)
    except Exception as error:  # noqa: BLE001 - tf2onnx fails in many ways on unusual ops
        raise AdoptError(f"the model could not be converted to ONNX: {_first_line(error)}") from None
    _name_outputs(proto, output_names)
    return fold_initializer_shapes(proto)


def prediction_only(cam_proto):
    """The cam graph without its cam output (one conversion serves both graphs)."""
    import onnx.utils

    return onnx.utils.Extractor(cam_proto).extract_model([INPUT_NAME], [PREDICTION_OUTPUT])


def keras_reference(model):
    """Runs the original Keras model on a preprocessed float batch -> float32 [N, classes]."""
    import keras

    classes = class_count(model)

    def run(batch: np.ndarray) -> np.ndarray:
        results = [np.zeros((0, classes), np.float32)]
        for start in range(0, len(batch), REFERENCE_BATCH):
            output = model(np.asarray(batch[start : start + REFERENCE_BATCH], np.float32), training=False)
            if isinstance(output, (list, tuple)):
                output = output[0]
            results.append(np.asarray(keras.ops.convert_to_numpy(output), np.float32))
        return np.concatenate(results)

    return run


def output_kind(model) -> Detected | None:
    from training.adopt.keras_cam import activation_name, last_layer

    layer = last_layer(model)
    name = activation_name(layer)
    origin = f"the last layer's activation ({layer.name}: {name})"
    if name == "softmax":
        return Detected("probabilities", origin)
    if name == "linear" and hasattr(layer, "activation"):
        return Detected("logits", origin)
    return None


def detect_settings(model, shape: tuple, labels_file: Path | None) -> dict[str, Detected]:
    from keras import layers

    from training.adopt.keras_cam import first_layer

    detected = {"layout": Detected("nhwc", f"the input tensor's shape {list(shape)} (Keras is channels-last)")}
    if shape[1] and shape[2]:
        detected["input_size"] = Detected((int(shape[1]), int(shape[2])), "the input tensor's shape")
    kind = output_kind(model)
    if kind is not None:
        detected["output"] = kind
    first = first_layer(model)
    if isinstance(first, (layers.Rescaling, layers.Normalization)):
        origin = ZERO_TO_255.format(layer=type(first).__name__)
        detected["mean"] = Detected((0.0, 0.0, 0.0), origin)
        detected["std"] = Detected((1 / 255, 1 / 255, 1 / 255), origin)
    if labels_file is not None and labels_file.is_file():
        labels = read_label_file(labels_file)
        if len(labels) != class_count(model):
            raise AdoptError(
                f"{labels_file} has {len(labels)} class names but the model has {class_count(model)} outputs"
            )
        detected["labels"] = Detected(labels, f"{labels_file.name} beside the file")
    return detected


def source_from_keras_model(model, path: Path, kind: str, labels_file: Path | None) -> AdoptSource:
    """Everything but the kind-specific settings: graphs, reference, detected values, notes."""
    from training.adopt.keras_cam import NoCamHead, build_cam_model

    shape = image_input_shape(model)
    class_count(model)
    detected = detect_settings(model, shape, labels_file)
    notes = []
    if len(model.outputs) > 1:
        notes.append(f"the model has {len(model.outputs)} outputs; the first is taken as the class scores")
    try:
        cam = build_cam_model(model, INPUT_NAME)
    except NoCamHead as reason:
        notes.append(f"{NO_CAM_NOTE} ({reason})")
        graph = keras_to_onnx(functional_wrapper(model, shape), shape, [PREDICTION_OUTPUT])
        return AdoptSource(kind, path, graph, keras_reference(model), detected, notes)
    cam_graph = keras_to_onnx(cam.model, shape, [PREDICTION_OUTPUT, CAM_OUTPUT])
    notes.append(f"activation maps in the graph: Grad-CAM at {cam.feature_layer} from the dense head's weights")
    source = AdoptSource(kind, path, prediction_only(cam_graph), keras_reference(model), detected, notes)
    source.cam_graph, source.cam_layer = cam_graph, cam.feature_layer
    return source


def read_keras_source(path: Path) -> AdoptSource:
    """A `.keras` or `.h5` classifier, with its label file beside it when there is one
    (labels.txt, <stem>.labels.txt or classes.txt: the same search as for ONNX files)."""
    path = Path(path)
    model = load_keras_model(path)
    return source_from_keras_model(model, path, KIND_KERAS, label_file_beside(path))
