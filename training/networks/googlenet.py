"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

Stem: conv 7x7/2 (64) -> max-pool 3/2 -> conv 1x1 (64) -> conv 3x3 (192) -> max-pool 3/2,
then inception modules 3a, 3b, max-pool, 4a-4e, max-pool, 5a, 5b. Each module runs four
branches side by side and concatenates them on the channel axis:

  1x1  |  1x1 reduce -> 3x3  |  1x1 reduce -> 5x5  |  3x3 max-pool -> 1x1 projection

with the widths of the paper's Table 1 (below). The base ends at 5b (1024 channels, 7x7 at
224); the head is global average pooling -> dropout 0.4 -> linear logits.

Two auxiliary classifiers (training only, weighted 0.3 in the loss) sit on 4a and 4d:
average-pool 5x5/3 -> conv 1x1 (128, relu) -> flatten -> dense 1024 (relu) -> dropout 0.7
-> dense classes (softmax). They are built by `aux_head`, outside the base, so the exported
classifier never contains them.

Departure from the paper: BatchNormalization after every convolution (as in BN-Inception,
replacing LRN); it is what lets the 22-layer net train from scratch in a few epochs.
All pools use "same" padding, so every input from 32x32 up keeps a valid map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.networks.info import NetworkInfo

if TYPE_CHECKING:  # Keras is imported where layers are built: listing networks needs no TensorFlow
    import keras

# Moving statistics follow the batches closely (PyTorch's default): short from-scratch runs
# on small data sets must not be evaluated with near-initial statistics.
BN_MOMENTUM = 0.9
LAST_CONV_LAYER = "inception_5b"
AUX_TAPS = ("inception_4a", "inception_4d")
DEFAULT_IMAGE_SIZE = 224
MIN_IMAGE_SIZE = 32

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) -- Table 1 of the paper.
INCEPTION_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _conv(x, filters: int, size: int, name: str, strides: int = 1):
    from keras import layers

    x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def inception_module(x, name: str):
    from keras import layers

    c1, r3, c3, r5, c5, pool_proj = INCEPTION_MODULES[name]
    prefix = f"inception_{name}"
    branch1 = _conv(x, c1, 1, f"{prefix}_1x1")
    branch3 = _conv(_conv(x, r3, 1, f"{prefix}_3x3_reduce"), c3, 3, f"{prefix}_3x3")
    branch5 = _conv(_conv(x, r5, 1, f"{prefix}_5x5_reduce"), c5, 5, f"{prefix}_5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{prefix}_pool")(x)
    branch_pool = _conv(pooled, pool_proj, 1, f"{prefix}_pool_proj")
    return layers.Concatenate(axis=-1, name=prefix)([branch1, branch3, branch5, branch_pool])


def googlenet_features(inputs):
    from keras import layers

    x = _conv(inputs, 64, 7, "conv1_7x7", strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(x, 64, 1, "conv2_3x3_reduce")
    x = _conv(x, 192, 3, "conv2_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = inception_module(x, "3a")
    x = inception_module(x, "3b")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3")(x)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x = inception_module(x, name)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool4")(x)
    x = inception_module(x, "5a")
    return inception_module(x, "5b")


def googlenet_head(num_classes: int) -> list[keras.layers.Layer]:
    from keras import layers

    return [
        layers.GlobalAveragePooling2D(name="head_pool"),
        layers.Dropout(0.4, name="head_dropout"),
        layers.Dense(num_classes, name="logits"),
    ]


def aux_head(num_classes: int, index: int, input_shape: tuple | None = None) -> list[keras.layers.Layer]:
    """Auxiliary classifier number `index` (0 -> "aux1" on 4a, 1 -> "aux2" on 4d).

    The paper's 5x5/3 average pool turns 4a's 14x14 map (at 224) into 4x4. On a smaller map
    the window is clamped to the map so a small input still works (at 64x64 the map is 4x4:
    one 4x4 window; at 32x32 it is 2x2). Pass the tap's shape (h, w, c) to get the clamp; without it the paper's
    window is used with "same" padding, which accepts any map size.
    """
    from keras import layers

    prefix = f"aux{index + 1}"
    if input_shape is not None and input_shape[0] and input_shape[1]:
        pool = min(5, int(input_shape[0]), int(input_shape[1]))
        pooling = layers.AveragePooling2D(pool, strides=3, padding="valid", name=f"{prefix}_pool")
    else:
        pooling = layers.AveragePooling2D(5, strides=3, padding="same", name=f"{prefix}_pool")
    return [
        pooling,
        layers.Conv2D(128, 1, activation="relu", name=f"{prefix}_conv"),
        layers.Flatten(name=f"{prefix}_flatten"),
        layers.Dense(1024, activation="relu", name=f"{prefix}_fc"),
        layers.Dropout(0.7, name=f"{prefix}_dropout"),
        layers.Dense(num_classes, activation="softmax", name=prefix),
    ]


NETWORK = NetworkInfo(
    name="googlenet",
    summary="GoogLeNet / Inception v1 (2014): 9 inception modules, 2 auxiliary classifiers in training",
    family="Inception",
    reference="Szegedy et al., 2015",
    default_image_size=DEFAULT_IMAGE_SIZE,
    min_image_size=MIN_IMAGE_SIZE,
    preprocessing="tf",
    last_conv_layer=LAST_CONV_LAYER,
    parameters=7_020_392,
    multiply_adds=1_582_671_872,
    features=googlenet_features,
    head=googlenet_head,
    aux_taps=AUX_TAPS,
    aux_head=aux_head,
    listing_position=40,
)
