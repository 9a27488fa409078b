"""The one place that knows each network as Keras builds it: every network's own description
(input size, preprocessing, last convolutional layer; `training.networks`) paired with its
constructor and head. Everything else asks the registry instead of hard-coding these.

Two kinds of entries:

* keras.applications backbones (ImageNet weights available, base frozen for the first
  stage, head = GlobalAveragePooling -> [Dense] -> Dropout -> Dense by default);
* networks built from scratch in `training.networks` (trained whole; `--weights PATH` loads
  a `.weights.h5` file into the base), each with its own fixed head.

The base of every entry is a Functional model named "base" whose output layer is
`last_conv_layer` (the map Grad-CAM uses); max-pooling never sits in a head.

The descriptions are written where each network is defined, as its `NetworkInfo` (with
its constructor), and `training.networks` discovers them, so nothing here names a network;
they need no TensorFlow (`convnet-train models` lists them instantly). This module adds
the Keras builders, so importing it imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
from keras import layers

from training import layers as studio_layers  # also registers the layers for safe_mode loading
from training.networks import NETWORKS
from training.networks.info import NetworkInfo

PREPROCESSING_RECIPES = ("tf", "caffe", "raw", "grey01")


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
    # "tf": x/127.5 - 1 (MobileNet, Xception, Inception); "caffe": RGB->BGR minus the ImageNet
    # means (VGG, ResNet); "raw": 0..255 unchanged (EfficientNet normalises inside);
    # "grey01": luma, then x/255.
    preprocessing: str
    last_conv_layer: str
    build_base: Callable[[tuple[int, int, int], str | None], keras.Model]
    # None means the standard GlobalAveragePooling -> [Dense] -> Dropout -> Dense head.
    build_head: Callable[[int, HeadOptions], list[keras.layers.Layer]] | None = None
    supports_imagenet: bool = False
    # Pretrained bases are frozen for the first stage; from-scratch ones train whole.
    frozen_base: bool = False
    keras_application: str | None = field(default=None)
    # "family" groups related networks in listings; "reference" is the paper.
    family: str = ""
    reference: str = ""
    # Classes of the network's original top (ImageNet's 1000, or 10 for the digit nets).
    top_classes: int = 1000
    # Layers inside the base feeding auxiliary classifiers (training only, never exported).
    aux_taps: tuple[str, ...] = ()
    aux_loss_weight: float = 0.3
    # (num_classes, index, tap shape (h, w, c) or None) -> the aux head, last layer softmax.
    build_aux: Callable[..., list[keras.layers.Layer]] | None = None
    # Flat from-scratch network on its native input: (input tensor) -> feature map tensor.
    features: Callable | None = None

    @property
    def input_channels(self) -> int:
        return 1 if self.preprocessing == "grey01" else 3

    def build_aux_head(
        self, num_classes: int, index: int, input_shape: tuple | None = None
    ) -> list[keras.layers.Layer]:
        """The auxiliary classifier on `aux_taps[index]`; its last layer is named aux{index+1}."""
        if self.build_aux is None or not 0 <= index < len(self.aux_taps):
            raise ValueError(f"{self.name} has no auxiliary classifier number {index}")
        return self.build_aux(num_classes, index, input_shape)

    def build_full_model(
        self, num_classes: int | None = None, include_top: bool = True, image_size: int | None = None
    ) -> keras.Model:
        """The network as published, on its native input, with random weights.

        keras.applications: the application itself (`include_top=True, weights=None,
        classes=num_classes`); without the top, the application's convolutional part.
        From-scratch networks: native-input base followed by their own head and softmax,
        as one flat model. No in-graph preprocessing either way.
        """
        classes = num_classes or self.top_classes
        size = image_size or self.default_image_size
        if self.keras_application is not None:
            constructor = getattr(keras.applications, self.keras_application)
            return constructor(
                include_top=include_top, weights=None, classes=classes, input_shape=(size, size, self.input_channels)
            )
        inputs = keras.Input((size, size, self.input_channels), name="input")
        x = self.features(inputs)
        if not include_top:
            return keras.Model(inputs, x, name=f"{self.name}_base")
        for layer in head_layers(self, classes, HeadOptions()):
            x = layer(x)
        outputs = layers.Activation("softmax", name="probabilities")(x)
        return keras.Model(inputs, outputs, name=self.name)


def _application_base(
    constructor_name: str, output_layer: str
) -> Callable[[tuple[int, int, int], str | None], keras.Model]:
    """The application without its top, cut at `output_layer` (VGG: before its last max-pool)."""

    def build(input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
        constructor = getattr(keras.applications, constructor_name)
        model = constructor(include_top=False, weights=weights, input_shape=input_shape)
        return keras.Model(model.input, model.get_layer(output_layer).output, name="base")

    return build


def _scratch_base(features: Callable) -> Callable[[tuple[int, int, int], str | None], keras.Model]:
    """A from-scratch base; `weights` is None or the path of a `.weights.h5` for the base."""

    def build(input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
        inputs = keras.Input(input_shape)
        base = keras.Model(inputs, features(inputs), name="base")
        if weights == "imagenet":
            raise ValueError("this network is built from scratch and has no ImageNet weights")
        if weights:
            base.load_weights(weights)
        return base

    return build


def _from_info(info: NetworkInfo, **builders) -> Backbone:
    """A Backbone with the description its network module gives (`NETWORK`) and its builders."""
    return Backbone(
        name=info.name,
        summary=info.summary,
        default_image_size=info.default_image_size,
        min_image_size=info.min_image_size,
        preprocessing=info.preprocessing,
        last_conv_layer=info.last_conv_layer,
        family=info.family,
        reference=info.reference,
        top_classes=info.top_classes,
        **builders,
    )


def _application(info: NetworkInfo) -> Backbone:
    return _from_info(
        info,
        build_base=_application_base(info.keras_application, info.last_conv_layer),
        supports_imagenet=True,
        frozen_base=True,
        keras_application=info.keras_application,
    )


def _from_scratch(info: NetworkInfo) -> Backbone:
    if info.features is None or info.head is None:
        raise ValueError(f"network {info.name!r} names neither a keras_application nor its own features and head")
    return _from_info(
        info,
        build_base=_scratch_base(info.features),
        build_head=_fixed_head(info.head),
        features=info.features,
        aux_taps=info.aux_taps,
        build_aux=info.aux_head,
    )


def _fixed_head(build: Callable[[int], list[keras.layers.Layer]]):
    return lambda classes, options: build(classes)


def backbone_for(info: NetworkInfo) -> Backbone:
    """The Keras builders for a network's description: a keras.applications constructor, or
    the network's own features and head. A description with neither fails here, at import."""
    return _application(info) if info.pretrained else _from_scratch(info)


# In the order `training.networks.NETWORKS` lists them.
BACKBONES: dict[str, Backbone] = {name: backbone_for(info) for name, info in NETWORKS.items()}


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
    recipe = backbone.preprocessing
    if recipe not in PREPROCESSING_RECIPES:
        raise ValueError(f"unknown preprocessing recipe {recipe!r}")
    if recipe != "grey01" and normalize_polarity:
        raise ValueError("polarity normalisation applies to greyscale networks only")
    if recipe == "tf":
        return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_scale")]
    if recipe == "caffe":
        return [studio_layers.CaffePreprocess(name="preprocess_caffe")]
    if recipe == "raw":
        return []
    steps: list[keras.layers.Layer] = [
        studio_layers.RgbToGrey(name="preprocess_grey"),
        layers.Rescaling(1.0 / 255.0, name="preprocess_scale"),
    ]
    if normalize_polarity:
        steps.append(studio_layers.NormalizePolarity(name="preprocess_polarity"))
    return steps


def describe_preprocessing(backbone: Backbone, normalize_polarity: bool = False) -> str:
    """Human-readable account of the in-graph preprocessing, stored in the model metadata."""
    recipe = backbone.preprocessing
    if recipe == "tf":
        return "uint8 RGB -> float, x / 127.5 - 1"
    if recipe == "caffe":
        b, g, r = studio_layers.CAFFE_BGR_MEAN
        return f"uint8 RGB -> float, channels reordered to BGR, minus the ImageNet means (B {b}, G {g}, R {r})"
    if recipe == "raw":
        return "uint8 RGB -> float 0..255, unchanged (the network rescales and normalises inside)"
    if recipe == "grey01":
        text = "uint8 RGB -> grey (0.299 R + 0.587 G + 0.114 B) -> x / 255"
        if normalize_polarity:
            text += (
                " -> inverted when the border is bright (dark-on-light becomes light-on-dark) -> stretched to [0, 1]"
            )
        return text
    raise ValueError(f"unknown preprocessing recipe {recipe!r}")


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
