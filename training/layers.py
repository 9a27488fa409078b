"""Preprocessing layers that live inside the model graph (and so inside the ONNX file).

Registered as Keras serialisables (package "convnet_studio") so checkpoints reload with
`safe_mode=True` (no Lambda layers, no pickled code): importing this module registers all
of them, which is why every loader of a checkpoint imports it. Keras finds a layer by its
registered name, not its module, so checkpoints saved while CaffePreprocess lived in
training/networks/preprocessing.py load the same.
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


# The per-channel means of the ImageNet training set, in BGR order, that the original Caffe
# models (VGG, ResNet) subtract; keras.applications' "caffe" mode uses the same numbers.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="convnet_studio")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0..255 -> BGR, minus the ImageNet channel means (no scaling).

    The same arithmetic as `keras.applications.vgg16.preprocess_input` / `resnet50`'s.
    The channel swap is a gather on the last axis, which tf2onnx turns into an ONNX Gather.
    """

    def call(self, images):
        bgr = ops.take(images, ops.convert_to_tensor([2, 1, 0], dtype="int32"), axis=-1)
        mean = ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=images.dtype)
        return bgr - mean

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
