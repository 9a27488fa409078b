"""Grad-CAM for every class, computed inside the exported graph.

Grad-CAM (Selvaraju et al., 2017) weights each channel k of the last convolutional map A
by alpha_k^c = mean_ij dy^c/dA^k_ij and takes ReLU(sum_k alpha_k^c A^k). The gradient
is built explicitly from the head's own weights so tf2onnx sees ordinary MatMul/Einsum
ops and the desktop app needs no autodiff:

* GlobalAveragePooling -> Dense: dy/dA_ij = W / (h w), so Grad-CAM is CAM / (h w).
* hidden Dense layers: the chain rule through each activation, per sample
  (LeNet-5's 120 -> 84 tanh layers).
* non-overlapping average pooling then Flatten: each pooled cell spreads its gradient
  evenly over its window, so summing the window gradients gives the pooled gradient.

* a linear 1x1 convolution followed by GlobalAveragePooling (the all-convolutional
  net's class layer) is the same function as pooling followed by a Dense layer, and is
  treated as one.

In every case sum_ij dy/dA_ij reduces to a per-sample [channels, classes] matrix S and
alpha = S / (h w).
"""

from __future__ import annotations

import keras
from keras import layers, ops

SUPPORTED_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")


class UnsupportedHeadError(ValueError):
    pass


def _activation_name(layer: layers.Dense) -> str:
    return getattr(layer.activation, "__name__", type(layer.activation).__name__)


def _is_linear_pointwise_conv(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, layers.Conv2D)
        and tuple(layer.kernel_size) == (1, 1)
        and tuple(layer.strides) == (1, 1)
        and _activation_name(layer) == "linear"
    )


def check_head(head: list[keras.layers.Layer]) -> None:
    """Refuse heads whose exact gradient this module cannot build."""
    ends_in_dense = bool(head) and isinstance(head[-1], layers.Dense) and _activation_name(head[-1]) == "linear"
    ends_in_class_conv = (
        len(head) >= 2 and isinstance(head[-1], layers.GlobalAveragePooling2D) and _is_linear_pointwise_conv(head[-2])
    )
    if not (ends_in_dense or ends_in_class_conv):
        raise UnsupportedHeadError(
            "the head must end in a Dense layer with linear activation (the logits), "
            "or in a linear 1x1 convolution followed by global average pooling"
        )
    seen_pooling = False
    for layer in head:
        if _is_linear_pointwise_conv(layer):
            if seen_pooling:
                raise UnsupportedHeadError(f"{layer.name}: a 1x1 convolution must come before the pooling")
        elif isinstance(layer, (layers.GlobalAveragePooling2D, layers.Flatten)):
            seen_pooling = True
        if isinstance(layer, layers.Dense):
            if _activation_name(layer) not in SUPPORTED_ACTIVATIONS:
                raise UnsupportedHeadError(f"activation {_activation_name(layer)!r} of {layer.name} is not supported")
        elif isinstance(layer, layers.AveragePooling2D):
            if tuple(layer.strides) != tuple(layer.pool_size) or layer.padding != "valid":
                raise UnsupportedHeadError(f"{layer.name}: only non-overlapping 'valid' average pooling is supported")
        elif not isinstance(layer, (layers.GlobalAveragePooling2D, layers.Flatten, layers.Dropout, layers.Conv2D)):
            raise UnsupportedHeadError(f"head layer {layer.name} ({type(layer).__name__}) is not supported")


def _activate(name: str, z):
    """Return the activation and its derivative with respect to z (None when it is 1)."""
    if name == "linear":
        return z, None
    if name == "relu":
        return ops.relu(z), ops.cast(z > 0, z.dtype)
    if name == "tanh":
        a = ops.tanh(z)
        return a, 1.0 - a * a
    a = ops.sigmoid(z)
    return a, a * (1.0 - a)


class GradCam(keras.layers.Layer):
    """Maps the last conv feature map [N, h, w, C] to Grad-CAM maps [N, h, w, classes]."""

    def __init__(self, head: list[keras.layers.Layer], **kwargs):
        super().__init__(**kwargs)
        check_head(head)
        self.head = head

    def call(self, features):
        height, width = features.shape[1], features.shape[2]
        x = features
        dense_steps = []  # (kernel, activation derivative or None) in forward order
        pooled_shape = None  # spatial shape right before Flatten
        pointwise = []  # linear 1x1 convolutions, applied as Dense layers after pooling
        for layer in self.head:
            if _is_linear_pointwise_conv(layer):
                pointwise.append(layer)
            elif isinstance(layer, layers.GlobalAveragePooling2D):
                x = ops.mean(x, axis=(1, 2))
                for conv in pointwise:
                    kernel = ops.reshape(conv.kernel, (conv.kernel.shape[2], conv.kernel.shape[3]))
                    z = ops.matmul(x, kernel)
                    if conv.use_bias:
                        z = z + conv.bias
                    dense_steps.append((kernel, None, z))
                    x = z
            elif isinstance(layer, layers.AveragePooling2D):
                x = layer(x)
            elif isinstance(layer, layers.Flatten):
                pooled_shape = tuple(x.shape[1:])
                x = ops.reshape(x, (-1, pooled_shape[0] * pooled_shape[1] * pooled_shape[2]))
            elif isinstance(layer, layers.Dense):
                z = ops.matmul(x, layer.kernel)
                if layer.use_bias:
                    z = z + layer.bias
                x, derivative = _activate(_activation_name(layer), z)
                dense_steps.append((layer.kernel, derivative, z))
        # Backward pass: grad[n, d, k] = d logit_k / d input_d of the current layer.
        kernel, _, _ = dense_steps[-1]
        ones = ops.expand_dims(ops.ones_like(dense_steps[-1][2][:, :1]), -1)  # [N, 1, 1]
        grad = ops.expand_dims(kernel, 0) * ones
        for kernel, derivative, _ in reversed(dense_steps[:-1]):
            if derivative is not None:
                grad = grad * ops.expand_dims(derivative, -1)
            grad = ops.einsum("ij,njk->nik", kernel, grad)
        if pooled_shape is not None:
            grad = ops.reshape(grad, (-1, pooled_shape[0], pooled_shape[1], pooled_shape[2], grad.shape[-1]))
            grad = ops.sum(grad, axis=(1, 2))
        alpha = grad / float(height * width)  # [N, C, classes]
        return ops.relu(ops.einsum("nhwc,nck->nhwk", features, alpha))

    def compute_output_shape(self, input_shape):
        last = self.head[-1] if isinstance(self.head[-1], layers.Dense) else self.head[-2]
        return (*input_shape[:3], last.units if isinstance(last, layers.Dense) else last.filters)
