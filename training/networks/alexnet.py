"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) as the seeds give it, on one GPU.

conv 11x11/4 (96) -> max-pool 3/2 -> conv 5x5 (256) -> max-pool 3/2 -> conv 3x3 (384)
-> conv 3x3 (384) -> conv 3x3 (256) -> max-pool 3/2 -> dense 4096 -> dense 4096 -> classes,
ReLU throughout, dropout 0.5 after each of the two 4096-unit layers.

Departures from the paper, both usual in modern re-implementations:
* BatchNormalization after conv1 and conv2 where the paper had Local Response Normalisation.
* conv1 uses "same" padding, so a 224x224 input gives the paper's 6x6x256 final map
  (the paper's 224 only works with its odd 227 arithmetic) and 64x64 still gives 1x1.

The base ends after the last max-pool ("pool5"): Grad-CAM's head supports Flatten and
Dense but not max-pooling, so the pool must sit inside the base.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.networks.info import NetworkInfo

if TYPE_CHECKING:  # Keras is imported where layers are built: listing networks needs no TensorFlow
    import keras

# Moving statistics follow the batches closely (PyTorch's default): short from-scratch runs
# on small data sets must not be evaluated with near-initial statistics.
BN_MOMENTUM = 0.9
LAST_CONV_LAYER = "pool5"
DEFAULT_IMAGE_SIZE = 224
MIN_IMAGE_SIZE = 64


def alexnet_features(inputs):
    from keras import layers

    x = layers.Conv2D(96, 11, strides=4, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="norm1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="norm2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    return layers.MaxPooling2D(3, strides=2, name=LAST_CONV_LAYER)(x)


def alexnet_head(num_classes: int) -> list[keras.layers.Layer]:
    from keras import layers

    return [
        layers.Flatten(name="head_flatten"),
        layers.Dense(4096, activation="relu", name="fc6"),
        layers.Dropout(0.5, name="drop6"),
        layers.Dense(4096, activation="relu", name="fc7"),
        layers.Dropout(0.5, name="drop7"),
        layers.Dense(num_classes, name="logits"),
    ]


NETWORK = NetworkInfo(
    name="alexnet",
    summary="AlexNet (2012): 11x11/4 stem, 5 relu convolutions, 3 max-pools, 4096-4096 dense head",
    family="AlexNet",
    reference="Krizhevsky, Sutskever & Hinton, 2012",
    default_image_size=DEFAULT_IMAGE_SIZE,
    min_image_size=MIN_IMAGE_SIZE,
    preprocessing="tf",
    last_conv_layer=LAST_CONV_LAYER,
    parameters=62_379_752,
    multiply_adds=1_139_124_224,
    features=alexnet_features,
    head=alexnet_head,
    listing_position=30,
)
