"""Preprocessing layers that live inside the model graph (and so inside the ONNX file).

Registered as Keras serialisables so checkpoints reload with `safe_mode=True`
(no Lambda layers, no pickled code).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="convnet_studio")
class RgbToGrey(keras.layers.Layer):
    """ITU-R BT.601 luma, the weights OpenCV and PIL use, keeping a channel axis."""

    def call(self, images):
        weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=images.dtype)
        return ops.sum(images * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="convnet_studio")
class NormalizePolarity(keras.layers.Layer):
    """Make every image light-on-dark at full contrast.

    Expects values in [0, 1]. A digit written dark on white paper has a bright border;
    the training digits are light on dark, so images with a bright border are inverted.
    Deciding from the border keeps the rule independent of how much ink the symbol uses.
    Then each image is stretched to span [0, 1], so grey paper, dim photos and faint
    pencil look like the scanned training digits.
    """

    def call(self, images):
        top = ops.mean(images[:, 0, :, :], axis=(1, 2))
        bottom = ops.mean(images[:, -1, :, :], axis=(1, 2))
        left = ops.mean(images[:, :, 0, :], axis=(1, 2))
        right = ops.mean(images[:, :, -1, :], axis=(1, 2))
        border = (top + bottom + left + right) / 4.0
        invert = ops.cast(border > 0.5, images.dtype)
        invert = ops.reshape(invert, (-1, 1, 1, 1))
        images = images * (1.0 - invert) + (1.0 - images) * invert
        low = ops.min(images, axis=(1, 2, 3), keepdims=True)
        high = ops.max(images, axis=(1, 2, 3), keepdims=True)
        return (images - low) / ops.maximum(high - low, 1e-3)
