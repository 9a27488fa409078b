"""The small MNIST convnet of the course notes (Chollet's "Deep Learning with Python").

28x28x1 -> conv 3x3 (32, relu) -> max-pool 2 -> conv 3x3 (64, relu) -> max-pool 2
-> conv 3x3 (64, relu) -> flatten -> dense 64 (relu) -> dense classes (softmax).
With 10 classes at 28x28 that is 320 + 18,496 + 36,928 + 36,928 + 650 = 93,322 parameters.
The base ends at the third convolution (3x3x64 at 28x28), the map used for Grad-CAM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.networks.info import NetworkInfo

if TYPE_CHECKING:  # Keras is imported where layers are built: listing networks needs no TensorFlow
    import keras

LAST_CONV_LAYER = "conv3"


def mnist_convnet_features(inputs):
    from keras import layers

    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    return layers.Conv2D(64, 3, activation="relu", name=LAST_CONV_LAYER)(x)


def mnist_convnet_head(num_classes: int) -> list[keras.layers.Layer]:
    from keras import layers

    return [
        layers.Flatten(name="head_flatten"),
        layers.Dense(64, activation="relu", name="head_dense"),
        layers.Dense(num_classes, name="logits"),
    ]


NETWORK = NetworkInfo(
    name="mnist_convnet",
    summary="Small MNIST convnet (course notes): 3 relu convolutions, 2 max-pools, 64-unit dense head",
    family="LeNet",
    reference="Chollet, Deep Learning with Python, 2017",
    default_image_size=28,
    min_image_size=20,
    preprocessing="grey01",
    last_conv_layer=LAST_CONV_LAYER,
    fine_cam_layer="conv2",
    parameters=93_322,
    multiply_adds=2_794_240,
    top_classes=10,
    features=mnist_convnet_features,
    head=mnist_convnet_head,
    listing_position=20,
)
