"""In-graph activation maps for adopted Keras classifiers with a pooling -> dense head.

Our own exports compute Grad-CAM inside the graph from the head's weights
(training.gradcam.GradCam): for GlobalAveragePooling2D -> Dense the gradient of each
logit with respect to the feature map is the Dense kernel / (h w), so the map needs no
autodiff at run time. A model made elsewhere (Teachable Machine's nested Sequential, a
functional keras.applications model with a new head) gets the same maps when its layers,
read as one chain, end in such a head. This module finds that head and builds a Keras
model with outputs (prediction, cam) that tf2onnx converts like our own export model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from training.gradcam import GradCam, UnsupportedHeadError, check_head

# Layers allowed after the global average pooling (what GradCam can differentiate exactly).
HEAD_LAYER_TYPES = (layers.Dense, layers.Dropout, layers.Activation, layers.Softmax)
# Activations of the last Dense layer whose pre-activation values are the class scores.
CLASS_SCORE_ACTIVATIONS = ("linear", "softmax", "sigmoid")


class NoCamHead(ValueError):
    """The model's layers do not end in a head GradCam can build exact maps for."""


@dataclass
class CamModel:
    model: keras.Model  # pixels -> [prediction, cam]
    feature_layer: str  # the layer whose output the maps are drawn on


def activation_name(layer) -> str:
    if isinstance(layer, layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", type(activation).__name__) if activation is not None else "linear"


def _is_functional(layer) -> bool:
    return isinstance(layer, keras.Model) and not isinstance(layer, keras.Sequential) and hasattr(layer, "_nodes")


def _inner_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]


def last_layer(layer):
    """The layer that produces the output, looking inside nested models."""
    while isinstance(layer, keras.Model) and _inner_layers(layer):
        layer = _inner_layers(layer)[-1]
    return layer


def first_layer(layer):
    """The first layer applied to the input, looking inside nested models."""
    while isinstance(layer, keras.Model) and _inner_layers(layer):
        layer = _inner_layers(layer)[0]
    return layer


def chain_steps(layer) -> list:
    """The model as steps applied one after another.

    Nested Sequential models are opened; a functional model is cut before the chain of
    single-input layers that ends it (up to and including a GlobalAveragePooling2D), so
    its tail can be read layer by layer while the part before stays one step.
    """
    if isinstance(layer, keras.Sequential):
        return [step for inner in _inner_layers(layer) for step in chain_steps(inner)]
    if _is_functional(layer):
        return _split_functional(layer)
    return [layer]


def _split_functional(model: keras.Model) -> list:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return [model]
    tail = []
    tensor = model.outputs[0]
    while True:
        operation, node_index, _ = tensor._keras_history  # noqa: SLF001 - Keras has no public graph walk
        if isinstance(operation, layers.InputLayer):
            break
        if not isinstance(operation, (*HEAD_LAYER_TYPES, layers.GlobalAveragePooling2D, keras.Model)):
            break
        node = operation._inbound_nodes[node_index]  # noqa: SLF001 - as above
        if len(node.input_tensors) != 1:
            break
        tail.insert(0, operation)
        tensor = node.input_tensors[0]
        if isinstance(operation, layers.GlobalAveragePooling2D):
            break
    if not tail:
        return [model]
    body = [] if tensor is model.inputs[0] else [keras.Model(model.inputs, tensor, name=f"{model.name}_features")]
    return body + [step for inner in tail for step in chain_steps(inner)]


def _dense_copy(dense: layers.Dense, activation: str) -> layers.Dense:
    """The same Dense weights with another activation (its own variables: only the values matter)."""
    copy = layers.Dense(dense.units, activation=activation, use_bias=dense.use_bias, name=f"{dense.name}_{activation}")
    copy.build((None, dense.kernel.shape[0]))
    copy.set_weights(dense.get_weights())
    return copy


def gradcam_head(head: list) -> list:
    """The head after the pooling, rewritten into the form training.gradcam accepts:
    Activation layers folded into the Dense before them, and the last Dense made linear
    so the maps are taken on the class scores before softmax (as for our own models)."""
    result = []
    for layer in head:
        if isinstance(layer, (layers.Activation, layers.Softmax)):
            previous = result[-1] if result else None
            if not isinstance(previous, layers.Dense) or activation_name(previous) != "linear":
                raise NoCamHead(f"{layer.name}: an activation layer must follow a linear Dense layer")
            result[-1] = _dense_copy(previous, activation_name(layer))
        else:
            result.append(layer)
    dense_layers = [i for i, layer in enumerate(result) if isinstance(layer, layers.Dense)]
    if not dense_layers:
        raise NoCamHead("no Dense layer after the global average pooling")
    last = dense_layers[-1]
    if any(not isinstance(layer, layers.Dropout) for layer in result[last + 1 :]):
        raise NoCamHead("only Dropout may follow the last Dense layer")
    result = result[: last + 1]
    if activation_name(result[-1]) not in CLASS_SCORE_ACTIVATIONS:
        raise NoCamHead(f"the last Dense layer's activation {activation_name(result[-1])!r} is not a class score")
    if activation_name(result[-1]) != "linear":
        result[-1] = _dense_copy(result[-1], "linear")
    try:
        check_head(result)
    except UnsupportedHeadError as error:
        raise NoCamHead(str(error)) from None
    return result


def build_cam_model(model: keras.Model, input_name: str) -> CamModel:
    """pixels -> [the model's prediction, cam [N, h, w, classes]], or NoCamHead saying why not."""
    steps = chain_steps(model)
    pools = [i for i, step in enumerate(steps) if isinstance(step, layers.GlobalAveragePooling2D)]
    if not pools or any(not isinstance(step, HEAD_LAYER_TYPES) for step in steps[pools[-1] + 1 :]):
        raise NoCamHead("the model does not end in global average pooling followed by Dense/Dropout/Activation layers")
    if pools[-1] == 0:
        raise NoCamHead("nothing before the global average pooling")
    shape = model.inputs[0].shape
    if shape[1] is None or shape[2] is None:
        raise NoCamHead("the input's height and width are not fixed")
    body, head = steps[: pools[-1]], steps[pools[-1] :]
    cam_head = gradcam_head(head)
    pixels = keras.Input(tuple(shape[1:]), name=input_name)
    features = pixels
    for step in body:
        features = step(features)
    if len(features.shape) != 4 or features.shape[1] is None or features.shape[2] is None:
        raise NoCamHead(f"the pooled feature map has shape {tuple(features.shape)}, not [N, h, w, channels]")
    prediction = features
    for step in head:
        prediction = step(prediction)
    cam = GradCam(cam_head, name="cam")(features)
    cam_model = keras.Model(pixels, [prediction, cam], name="adopted_with_cam")
    return CamModel(cam_model, last_layer(body[-1]).name)
