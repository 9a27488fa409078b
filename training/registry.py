"""The one place that knows each backbone: constructor, input size, preprocessing and the
last convolutional layer. Everything else asks the registry instead of hard-coding these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
from keras import layers

from training import layers as studio_layers
from training.networks import lenet


@dataclass(frozen=True)
class HeadOptions:
    """What sits between the backbone's feature map and the logits."""

    dropout: float = 0.2
    hidden_units: int = 0
    hidden_activation: str = "relu"


@dataclass(frozen=True)
class Backbone:
    name: str
    summary: str
    default_image_size: int
    min_image_size: int
    # "tf": x/127.5 - 1 (MobileNet, Xception, Inception); "grey01": luma, then x/255.
    preprocessing: str
    last_conv_layer: str
    build_base: Callable[[tuple[int, int, int], str | None], keras.Model]
    # None means the standard GlobalAveragePooling -> [Dense] -> Dropout -> Dense head.
    build_head: Callable[[int, HeadOptions], list[keras.layers.Layer]] | None = None
    supports_imagenet: bool = False
    # Pretrained bases are frozen for the first stage; from-scratch ones train whole.
    frozen_base: bool = False
    keras_application: str | None = field(default=None)

    @property
    def input_channels(self) -> int:
        return 1 if self.preprocessing == "grey01" else 3


def _application_base(constructor_name: str) -> Callable[[tuple[int, int, int], str | None], keras.Model]:
    def build(input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
        constructor = getattr(keras.applications, constructor_name)
        model = constructor(include_top=False, weights=weights, input_shape=input_shape)
        return keras.Model(model.input, model.output, name="base")

    return build


def _lenet_base(input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
    base = lenet.lenet5_base(input_shape)
    if weights:
        base.load_weights(weights)
    return base


BACKBONES: dict[str, Backbone] = {
    backbone.name: backbone
    for backbone in [
        Backbone(
            name="mobilenet_v2",
            summary="MobileNetV2 (keras.applications): depthwise-separable, inverted residuals",
            default_image_size=224,
            min_image_size=32,
            preprocessing="tf",
            last_conv_layer="out_relu",
            build_base=_application_base("MobileNetV2"),
            supports_imagenet=True,
            frozen_base=True,
            keras_application="MobileNetV2",
        ),
        Backbone(
            name="lenet5",
            summary="LeNet-5 (LeCun 1998): two tanh convolutions, average pooling, 120-84 dense head",
            default_image_size=32,
            min_image_size=28,
            preprocessing="grey01",
            last_conv_layer=lenet.LAST_CONV_LAYER,
            build_base=_lenet_base,
            build_head=lambda classes, options: lenet.lenet5_head(classes),
        ),
    ]
}


class UnknownBackboneError(ValueError):
    pass


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(sorted(BACKBONES))
        raise UnknownBackboneError(f"unknown backbone {name!r}; choose one of: {known}") from None


def preprocessing_layers(backbone: Backbone, normalize_polarity: bool = False) -> list[keras.layers.Layer]:
    """Layers mapping float RGB in [0, 255] to what the backbone expects."""
    if backbone.preprocessing == "tf":
        if normalize_polarity:
            raise ValueError("polarity normalisation applies to greyscale networks only")
        return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_scale")]
    if backbone.preprocessing == "grey01":
        steps: list[keras.layers.Layer] = [
            studio_layers.RgbToGrey(name="preprocess_grey"),
            layers.Rescaling(1.0 / 255.0, name="preprocess_scale"),
        ]
        if normalize_polarity:
            steps.append(studio_layers.NormalizePolarity(name="preprocess_polarity"))
        return steps
    raise ValueError(f"unknown preprocessing recipe {backbone.preprocessing!r}")


def describe_preprocessing(backbone: Backbone, normalize_polarity: bool = False) -> str:
    """Human-readable account of the in-graph preprocessing, stored in the model metadata."""
    if backbone.preprocessing == "tf":
        return "uint8 RGB -> float, x / 127.5 - 1"
    text = "uint8 RGB -> grey (0.299 R + 0.587 G + 0.114 B) -> x / 255"
    if normalize_polarity:
        text += " -> inverted when the border is bright (dark-on-light becomes light-on-dark)"
    return text


def head_layers(backbone: Backbone, num_classes: int, options: HeadOptions) -> list[keras.layers.Layer]:
    if backbone.build_head is not None:
        return backbone.build_head(num_classes, options)
    head: list[keras.layers.Layer] = [layers.GlobalAveragePooling2D(name="head_pool")]
    if options.hidden_units:
        head.append(layers.Dense(options.hidden_units, activation=options.hidden_activation, name="head_hidden"))
    if options.dropout:
        head.append(layers.Dropout(options.dropout, name="head_dropout"))
    head.append(layers.Dense(num_classes, name="logits"))
    return head
