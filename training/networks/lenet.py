"""LeNet-5 (LeCun et al., 1998) as the seeds give it.

32x32 greyscale -> conv 5x5 (6, tanh) -> avg-pool 2 -> conv 5x5 (16, tanh) -> avg-pool 2
-> dense 120 (tanh) -> dense 84 (tanh) -> classes. The feature extractor ends at the
second convolution so activation maps are 10x10 rather than the pooled 5x5.
With 10 classes at 32x32 the network has 61,706 parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.networks.info import NetworkInfo

if TYPE_CHECKING:  # Keras is imported where layers are built: listing networks needs no TensorFlow
    import keras

LAST_CONV_LAYER = "conv2"


def lenet5_features(inputs):
    from keras import layers

    x = layers.Conv2D(6, 5, activation="tanh", name="conv1")(inputs)
    x = layers.AveragePooling2D(2, name="pool1")(x)
    return layers.Conv2D(16, 5, activation="tanh", name=LAST_CONV_LAYER)(x)


def lenet5_head(num_classes: int) -> list[keras.layers.Layer]:
    """The classic head; its hidden tanh layers are why the exported CAM needs gradients."""
    from keras import layers

    return [
        layers.AveragePooling2D(2, name="head_pool"),
        layers.Flatten(name="head_flatten"),
        layers.Dense(120, activation="tanh", name="head_dense1"),
        layers.Dense(84, activation="tanh", name="head_dense2"),
        layers.Dense(num_classes, name="logits"),
    ]


NETWORK = NetworkInfo(
    name="lenet5",
    summary="LeNet-5 (LeCun 1998): two tanh convolutions, average pooling, 120-84 dense head",
    family="LeNet",
    reference="LeCun et al., 1998",
    default_image_size=32,
    min_image_size=28,
    preprocessing="grey01",
    last_conv_layer=LAST_CONV_LAYER,
    fine_cam_layer="conv1",
    parameters=61_706,
    multiply_adds=416_520,
    top_classes=10,
    features=lenet5_features,
    head=lenet5_head,
    listing_position=10,
)
