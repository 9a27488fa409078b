"""In-graph preprocessing layers for the keras.applications recipes that need more than a
Rescaling layer.

Registered as Keras serialisables (package "convnet_studio") so checkpoints containing them
reload with `safe_mode=True`. `training.registry` imports this module, so the layers are
registered whenever the registry is imported.
"""

from __future__ import annotations

import keras
from keras import ops

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
