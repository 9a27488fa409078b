"""LayerCAM at an earlier, finer convolutional layer, computed inside the exported graph.

Grad-CAM at the last convolution is coarse on small inputs (LeNet-5 at 32 px: a 10x10
grid). LayerCAM (Jiang et al., 2021) weights every location by its own positive gradient,
so it stays faithful at earlier layers where Grad-CAM's channel averages do not:

    M^c = ReLU( sum_k ReLU(dy^c / dA^k_ij) * A^k_ij )

with y^c the logit of class c and A the earlier layer's activations.

Why the gradient is written out by hand: tf2onnx cannot convert TensorFlow's gradient
kernels (TanhGrad, ReluGrad, AvgPoolGrad and MaxPoolGrad have no converter; checked in
tf2onnx 1.17), so a tf.GradientTape inside the export graph would not reach the ONNX file.
Instead the backward pass is built from forward ops, as training/gradcam.py does for the
head: the head's chain rule gives dy/dA at the last conv map per location, then each
"bridge" layer between the earlier layer and the last conv map is stepped back through:

* Conv2D (+ linear/relu/tanh/sigmoid): multiply by the activation's derivative, then a
  transposed convolution with the layer's own kernel (ONNX ConvTranspose).
* non-overlapping 'valid' AveragePooling2D: spread each cell's gradient evenly over its
  window; MaxPooling2D: route it to the window's maximum (a tie at a value other than 0
  would split where TensorFlow picks one; ties at 0 after a ReLU contribute nothing).
* Dropout and the identity: unchanged.

The classes are folded into the batch for the transposed convolutions, so the cost is
one backward pass per class; for the small networks this is meant for that is cheap.
tests/training/test_fine_cam.py checks the result against tf.GradientTape.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from convnet_common import model_format as fmt
from convnet_common.unknown_score import UNKNOWN_OUTPUT
from training.gradcam import _activate, _activation_name, _is_linear_pointwise_conv, check_head

METHOD = "layercam"
BRIDGE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")


class UnsupportedBridgeError(ValueError):
    pass


def _pooling_is_simple(layer) -> bool:
    return tuple(layer.strides) == tuple(layer.pool_size) and layer.padding == "valid"


def check_bridge(bridge: list[keras.layers.Layer]) -> None:
    """Refuse layers between the fine layer and the last conv map whose gradient is not built here."""
    for layer in bridge:
        if isinstance(layer, layers.Conv2D) and type(layer) is layers.Conv2D:
            if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
                raise UnsupportedBridgeError(f"{layer.name}: dilated or grouped convolutions are not supported")
            if _activation_name(layer) not in BRIDGE_ACTIVATIONS:
                raise UnsupportedBridgeError(f"{layer.name}: activation {_activation_name(layer)!r} is not supported")
        elif isinstance(layer, (layers.AveragePooling2D, layers.MaxPooling2D)):
            if not _pooling_is_simple(layer):
                raise UnsupportedBridgeError(f"{layer.name}: only non-overlapping 'valid' pooling is supported")
        elif not isinstance(layer, layers.Dropout):
            raise UnsupportedBridgeError(f"{layer.name} ({type(layer).__name__}) is not supported between the layers")


def bridge_layers(base: keras.Model, fine_layer: str) -> list[keras.layers.Layer]:
    """The base's layers after `fine_layer`, which must form a straight chain to the base's output."""
    chain = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in chain]
    if fine_layer not in names:
        raise UnsupportedBridgeError(f"the base has no layer named {fine_layer!r}")
    bridge = chain[names.index(fine_layer) + 1 :]
    previous = base.get_layer(fine_layer).output
    for layer in bridge:
        if layer.input is not previous:
            raise UnsupportedBridgeError(f"{layer.name} does not follow the layer before it: the base must be a chain")
        previous = layer.output
    if previous is not base.output:
        raise UnsupportedBridgeError(f"the chain after {fine_layer!r} does not end at the base's output")
    check_bridge(bridge)
    return bridge


def _fold(tensor):
    """[N, K, h, w, C] -> [N*K, h, w, C]"""
    return ops.reshape(tensor, (-1, *tensor.shape[2:]))


def _unfold(tensor, classes: int):
    return ops.reshape(tensor, (-1, classes, *tensor.shape[1:]))


def _spread_over_windows(grad, pool: tuple[int, int], target_shape):
    """[M, ph, pw, C] -> [M, H, W, C]: each cell repeated over its window, zero in the
    rows and columns a 'valid' pooling dropped."""
    grad = ops.repeat(ops.repeat(grad, pool[0], axis=1), pool[1], axis=2)
    missing_h, missing_w = target_shape[0] - grad.shape[1], target_shape[1] - grad.shape[2]
    if missing_h or missing_w:
        grad = ops.pad(grad, ((0, 0), (0, missing_h), (0, missing_w), (0, 0)))
    return grad


def _per_class(values, classes: int):
    """[N, h, w, C] -> [N*K, h, w, C], the same values for every class."""
    return _fold(ops.repeat(ops.expand_dims(values, 1), classes, axis=1))


def _head_gradient(head: list[keras.layers.Layer], features):
    """d logits / d features at every location: [N, K, h, w, C]."""
    x = features
    dense_steps = []  # (kernel, derivative or None)
    spatial = []  # (layer, input) for pooling before Flatten, forward order
    gap_shape = None
    pointwise = []
    for layer in head:
        if _is_linear_pointwise_conv(layer):
            pointwise.append(layer)
        elif isinstance(layer, layers.GlobalAveragePooling2D):
            gap_shape = tuple(x.shape[1:])
            x = ops.mean(x, axis=(1, 2))
            for conv in pointwise:
                kernel = ops.reshape(conv.kernel, (conv.kernel.shape[2], conv.kernel.shape[3]))
                x = ops.matmul(x, kernel) + (conv.bias if conv.use_bias else 0.0)
                dense_steps.append((kernel, None))
        elif isinstance(layer, layers.AveragePooling2D):
            spatial.append((layer, x))
            x = layer(x)
        elif isinstance(layer, layers.Flatten):
            flat_shape = tuple(x.shape[1:])
            x = ops.reshape(x, (-1, flat_shape[0] * flat_shape[1] * flat_shape[2]))
        elif isinstance(layer, layers.Dense):
            z = ops.matmul(x, layer.kernel) + (layer.bias if layer.use_bias else 0.0)
            x, derivative = _activate(_activation_name(layer), z)
            dense_steps.append((layer.kernel, derivative))
    kernel, _ = dense_steps[-1]
    grad = ops.expand_dims(kernel, 0) * ops.ones_like(x[:, :1, None])  # [N, D, K]
    for kernel, derivative in reversed(dense_steps[:-1]):
        if derivative is not None:
            grad = grad * ops.expand_dims(derivative, -1)
        grad = ops.einsum("ij,njk->nik", kernel, grad)
    classes = grad.shape[-1]
    if gap_shape is not None:
        height, width, channels = gap_shape
        grad = ops.transpose(grad, (0, 2, 1))[:, :, None, None, :] / float(height * width)
        return grad * ops.ones((1, 1, height, width, channels), dtype=grad.dtype)
    grad = ops.reshape(grad, (-1, *flat_shape, classes))  # [N, h, w, C, K]
    grad = _fold(ops.transpose(grad, (0, 4, 1, 2, 3)))
    for layer, layer_input in reversed(spatial):
        pool = tuple(layer.pool_size)
        grad = _spread_over_windows(grad, pool, layer_input.shape[1:3]) / float(pool[0] * pool[1])
    return _unfold(grad, classes)


def _conv_backward(layer: layers.Conv2D, layer_input, grad, classes: int):
    """Gradient at a Conv2D's input from the gradient at its (activated) output, both [N*K, ...]."""
    z = layer.convolution_op(layer_input, layer.kernel)
    if layer.use_bias:
        z = z + layer.bias
    _, derivative = _activate(_activation_name(layer), z)
    if derivative is not None:
        grad = grad * _per_class(derivative, classes)
    strides = tuple(layer.strides)
    out_h, out_w = layer_input.shape[1], layer_input.shape[2]
    kernel_h, kernel_w = layer.kernel.shape[0], layer.kernel.shape[1]
    if layer.padding == "valid":
        natural = ((grad.shape[1] - 1) * strides[0] + kernel_h, (grad.shape[2] - 1) * strides[1] + kernel_w)
    else:
        natural = ((grad.shape[1] - 1) * strides[0] + 1, (grad.shape[2] - 1) * strides[1] + 1)
    output_padding = None if strides == (1, 1) else (out_h - natural[0], out_w - natural[1])
    return ops.conv_transpose(grad, layer.kernel, strides=strides, padding=layer.padding, output_padding=output_padding)


def _pool_backward(layer, layer_input, grad, classes: int):
    pool = tuple(layer.pool_size)
    if isinstance(layer, layers.AveragePooling2D):
        return _spread_over_windows(grad, pool, layer_input.shape[1:3]) / float(pool[0] * pool[1])
    pooled = _spread_over_windows(layer(layer_input), pool, layer_input.shape[1:3])
    is_max = ops.cast(ops.equal(layer_input, pooled), grad.dtype)
    return _spread_over_windows(grad, pool, layer_input.shape[1:3]) * _per_class(is_max, classes)


class LayerCam(keras.layers.Layer):
    """Maps the fine layer's activations [N, H, W, C'] to LayerCAM maps [N, H, W, classes].

    The bridge and head layers are the classifier's own (shared weights); the forward pass
    from the fine layer to the logits is re-run here to get the activations the chain rule
    needs.
    """

    def __init__(self, bridge: list[keras.layers.Layer], head: list[keras.layers.Layer], **kwargs):
        super().__init__(**kwargs)
        check_bridge(bridge)
        check_head(head)
        self.bridge = bridge
        self.head = head

    def call(self, fine):
        inputs = []
        x = fine
        for layer in self.bridge:
            inputs.append(x)
            x = layer(x)
        grad = _head_gradient(self.head, x)
        classes = grad.shape[1]
        grad = _fold(grad)
        for layer, layer_input in zip(reversed(self.bridge), reversed(inputs), strict=True):
            if isinstance(layer, layers.Conv2D):
                grad = _conv_backward(layer, layer_input, grad, classes)
            elif isinstance(layer, (layers.AveragePooling2D, layers.MaxPooling2D)):
                grad = _pool_backward(layer, layer_input, grad, classes)
        grad = _unfold(grad, classes)  # [N, K, H, W, C']
        weighted = ops.relu(grad) * ops.expand_dims(fine, 1)
        return ops.relu(ops.transpose(ops.sum(weighted, axis=-1), (0, 2, 3, 1)))

    def compute_output_shape(self, input_shape):
        last = self.head[-1] if isinstance(self.head[-1], layers.Dense) else self.head[-2]
        return (*input_shape[:3], last.units if isinstance(last, layers.Dense) else last.filters)


def fine_cam_output(classifier: keras.Model, pixels, fine_layer: str, head: list, base_layer: str = "base"):
    """The LayerCAM output for `classifier` re-run on float `pixels`, at `fine_layer` of its base.

    The preprocessing layers are re-called up to the base, then a view of the base ending at
    `fine_layer` gives the activations; the rest is LayerCam's own forward and backward pass,
    with the classifier's layers (so the map describes exactly the exported classifier).
    `head` is the classifier's head, logits included (model_builder.head_of).
    """
    chain = [layer for layer in classifier.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in chain]
    base = classifier.get_layer(base_layer)
    x = pixels
    for layer in chain[: names.index(base_layer)]:
        x = layer(x)
    bridge = bridge_layers(base, fine_layer)
    to_fine = keras.Model(base.input, base.get_layer(fine_layer).output, name=f"{base_layer}_to_{fine_layer}")
    return LayerCam(bridge, head, name="cam_fine")(to_fine(x, training=False))


def export_output_names(export_model) -> list[str]:
    """The contract's names for build_export_model's outputs, in order: probabilities, cam,
    then unknown_score and cam_fine (build_export_model appends it last) where the graph has them."""
    has_fine = any(isinstance(layer, LayerCam) for layer in export_model.layers)
    has_unknown = len(export_model.outputs) - 2 - has_fine > 0
    return (
        [fmt.PROBABILITIES_OUTPUT, fmt.CAM_OUTPUT]
        + ([UNKNOWN_OUTPUT] if has_unknown else [])
        + ([fmt.CAM_FINE_OUTPUT] if has_fine else [])
    )


def fine_cam_layer_of(network: str) -> str | None:
    """The network's `fine_cam_layer` (training/networks), or None."""
    from training.networks import NETWORKS

    info = NETWORKS.get(network)
    return info.fine_cam_layer if info is not None else None


def fine_map_difference(session, keras_fine: np.ndarray | None, images: np.ndarray) -> float | None:
    """The file's cam_fine against Keras's, scaled as cam's is (None when there is none)."""
    if keras_fine is None:
        return None
    onnx_fine = np.concatenate(
        [
            session.run([fmt.CAM_FINE_OUTPUT], {fmt.INPUT_NAME: images[start : start + 64]})[0]
            for start in range(0, len(images), 64)
        ]
    )
    return float(np.max(np.abs(onnx_fine - keras_fine))) / max(1.0, float(np.max(np.abs(keras_fine))))
