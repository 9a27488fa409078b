"""The all-convolutional net, All-CNN-C (Springenberg, Dosovitskiy, Brox & Riedmiller,
"Striving for Simplicity: The All Convolutional Net", ICLR 2015 workshop).

Max-pooling is replaced by 3x3 convolutions with stride 2, and the fully connected layers
by 1x1 convolutions and global averaging:

  conv 3x3 (96) -> conv 3x3 (96) -> conv 3x3/2 (96) -> dropout 0.5
  -> conv 3x3 (192) -> conv 3x3 (192) -> conv 3x3/2 (192) -> dropout 0.5
  -> conv 3x3 valid (192) -> conv 1x1 (192)                    [base ends here: "conv8"]
  -> conv 1x1 (classes, linear) -> global average pooling -> softmax   [head]

ReLU after every convolution but the class one. The paper also drops 20% of the input
pixels; that is left out here (the studio's augmentation does the input-side regularising).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.networks.info import NetworkInfo

if TYPE_CHECKING:  # Keras is imported where layers are built: listing networks needs no TensorFlow
    import keras

LAST_CONV_LAYER = "conv8"
CLASS_CONV_LAYER = "head_class_conv"
DEFAULT_IMAGE_SIZE = 32
MIN_IMAGE_SIZE = 16


def allconv_features(inputs):
    from keras import layers

    x = inputs
    for index, (filters, stride) in enumerate([(96, 1), (96, 1), (96, 2), (192, 1), (192, 1), (192, 2)], start=1):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu", name=f"conv{index}")(x)
        if stride == 2:
            x = layers.Dropout(0.5, name=f"drop{index}")(x)
    x = layers.Conv2D(192, 3, padding="valid", activation="relu", name="conv7")(x)
    return layers.Conv2D(192, 1, activation="relu", name=LAST_CONV_LAYER)(x)


def allconv_head(num_classes: int) -> list[keras.layers.Layer]:
    """1x1 class convolution then global averaging: the averaged class maps are the logits."""
    from keras import layers

    return [
        layers.Conv2D(num_classes, 1, activation=None, name=CLASS_CONV_LAYER),
        layers.GlobalAveragePooling2D(name="logits"),
    ]


NETWORK = NetworkInfo(
    name="allconv",
    summary="All-CNN-C (2015): stride-2 convolutions instead of pooling, 1x1 class conv + global average",
    family="All-convolutional",
    reference="Springenberg et al., 2015",
    default_image_size=DEFAULT_IMAGE_SIZE,
    min_image_size=MIN_IMAGE_SIZE,
    preprocessing="tf",
    last_conv_layer=LAST_CONV_LAYER,
    parameters=1_560_808,
    multiply_adds=277_641_216,
    features=allconv_features,
    head=allconv_head,
    listing_position=50,
    digits_test_epochs=8,
)
