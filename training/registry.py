"""The one place that knows each network: constructor, input size, preprocessing and the
last convolutional layer. Everything else asks the registry instead of hard-coding these.

Two kinds of entries:

* keras.applications backbones (ImageNet weights available, base frozen for the first
  stage, head = GlobalAveragePooling -> [Dense] -> Dropout -> Dense by default);
* networks built from scratch in `training.networks` (trained whole; `--weights PATH` loads
  a `.weights.h5` file into the base), each with its own fixed head.

The base of every entry is a Functional model named "base" whose output layer is
`last_conv_layer` (the map Grad-CAM uses); max-pooling never sits in a head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
from keras import layers

from training import layers as studio_layers
from training.networks import alexnet, allconv, googlenet, lenet, mnist_convnet
from training.networks import preprocessing as network_preprocessing  # registers CaffePreprocess

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

    @property
    def from_scratch(self) -> bool:
        return not self.supports_imagenet

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


def _application_base(constructor_name: str, output_layer: str) -> Callable[[tuple[int, int, int], str | None], keras.Model]:
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


def _application(
    name: str,
    constructor: str,
    summary: str,
    family: str,
    reference: str,
    size: int,
    min_size: int,
    preprocessing: str,
    last_conv: str,
) -> Backbone:
    return Backbone(
        name=name,
        summary=summary,
        default_image_size=size,
        min_image_size=min_size,
        preprocessing=preprocessing,
        last_conv_layer=last_conv,
        build_base=_application_base(constructor, last_conv),
        supports_imagenet=True,
        frozen_base=True,
        keras_application=constructor,
        family=family,
        reference=reference,
    )


def _fixed_head(build: Callable[[int], list[keras.layers.Layer]]):
    return lambda classes, options: build(classes)


BACKBONES: dict[str, Backbone] = {
    backbone.name: backbone
    for backbone in [
        _application(
            "mobilenet_v2", "MobileNetV2",
            "MobileNetV2 (keras.applications): depthwise-separable, inverted residuals",
            "MobileNet", "Sandler et al., 2018", 224, 32, "tf", "out_relu",
        ),
        _application(
            "resnet50", "ResNet50",
            "ResNet-50 (keras.applications): bottleneck residual blocks with skip connections",
            "ResNet", "He et al., 2016", 224, 32, "caffe", "conv5_block3_out",
        ),
        _application(
            "xception", "Xception",
            "Xception (keras.applications): 'extreme inception', depthwise-separable convolutions",
            "Inception", "Chollet, 2017", 299, 71, "tf", "block14_sepconv2_act",
        ),
        _application(
            "vgg16", "VGG16",
            "VGG-16 (keras.applications): 13 3x3 convolutions in 5 blocks; base cut before the last max-pool",
            "VGG", "Simonyan & Zisserman, 2015", 224, 32, "caffe", "block5_conv3",
        ),
        _application(
            "vgg19", "VGG19",
            "VGG-19 (keras.applications): 16 3x3 convolutions in 5 blocks; base cut before the last max-pool",
            "VGG", "Simonyan & Zisserman, 2015", 224, 32, "caffe", "block5_conv4",
        ),
        _application(
            "inception_v3", "InceptionV3",
            "Inception v3 (keras.applications): factorised inception modules",
            "Inception", "Szegedy et al., 2016", 299, 75, "tf", "mixed10",
        ),
        _application(
            "efficientnet_b0", "EfficientNetB0",
            "EfficientNet-B0 (keras.applications): compound-scaled MBConv blocks, normalises inside",
            "EfficientNet", "Tan & Le, 2019", 224, 32, "raw", "top_activation",
        ),
        Backbone(
            name="lenet5",
            summary="LeNet-5 (LeCun 1998): two tanh convolutions, average pooling, 120-84 dense head",
            default_image_size=32,
            min_image_size=28,
            preprocessing="grey01",
            last_conv_layer=lenet.LAST_CONV_LAYER,
            build_base=_scratch_base(lenet.lenet5_features),
            build_head=_fixed_head(lenet.lenet5_head),
            family="LeNet",
            reference="LeCun et al., 1998",
            top_classes=10,
            features=lenet.lenet5_features,
        ),
        Backbone(
            name="mnist_convnet",
            summary="Small MNIST convnet (course notes): 3 relu convolutions, 2 max-pools, 64-unit dense head",
            default_image_size=28,
            min_image_size=20,
            preprocessing="grey01",
            last_conv_layer=mnist_convnet.LAST_CONV_LAYER,
            build_base=_scratch_base(mnist_convnet.mnist_convnet_features),
            build_head=_fixed_head(mnist_convnet.mnist_convnet_head),
            family="LeNet",
            reference="Chollet, Deep Learning with Python, 2017",
            top_classes=10,
            features=mnist_convnet.mnist_convnet_features,
        ),
        Backbone(
            name="alexnet",
            summary="AlexNet (2012): 11x11/4 stem, 5 relu convolutions, 3 max-pools, 4096-4096 dense head",
            default_image_size=alexnet.DEFAULT_IMAGE_SIZE,
            min_image_size=alexnet.MIN_IMAGE_SIZE,
            preprocessing="tf",
            last_conv_layer=alexnet.LAST_CONV_LAYER,
            build_base=_scratch_base(alexnet.alexnet_features),
            build_head=_fixed_head(alexnet.alexnet_head),
            family="AlexNet",
            reference="Krizhevsky, Sutskever & Hinton, 2012",
            features=alexnet.alexnet_features,
        ),
        Backbone(
            name="googlenet",
            summary="GoogLeNet / Inception v1 (2014): 9 inception modules, 2 auxiliary classifiers in training",
            default_image_size=googlenet.DEFAULT_IMAGE_SIZE,
            min_image_size=googlenet.MIN_IMAGE_SIZE,
            preprocessing="tf",
            last_conv_layer=googlenet.LAST_CONV_LAYER,
            build_base=_scratch_base(googlenet.googlenet_features),
            build_head=_fixed_head(googlenet.googlenet_head),
            family="Inception",
            reference="Szegedy et al., 2015",
            aux_taps=googlenet.AUX_TAPS,
            build_aux=googlenet.aux_head,
            features=googlenet.googlenet_features,
        ),
        Backbone(
            name="allconv",
            summary="All-CNN-C (2015): stride-2 convolutions instead of pooling, 1x1 class conv + global average",
            default_image_size=allconv.DEFAULT_IMAGE_SIZE,
            min_image_size=allconv.MIN_IMAGE_SIZE,
            preprocessing="tf",
            last_conv_layer=allconv.LAST_CONV_LAYER,
            build_base=_scratch_base(allconv.allconv_features),
            build_head=_fixed_head(allconv.allconv_head),
            family="All-convolutional",
            reference="Springenberg et al., 2015",
            features=allconv.allconv_features,
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
    recipe = backbone.preprocessing
    if recipe not in PREPROCESSING_RECIPES:
        raise ValueError(f"unknown preprocessing recipe {recipe!r}")
    if recipe != "grey01" and normalize_polarity:
        raise ValueError("polarity normalisation applies to greyscale networks only")
    if recipe == "tf":
        return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_scale")]
    if recipe == "caffe":
        return [network_preprocessing.CaffePreprocess(name="preprocess_caffe")]
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
        b, g, r = network_preprocessing.CAFFE_BGR_MEAN
        return f"uint8 RGB -> float, channels reordered to BGR, minus the ImageNet means (B {b}, G {g}, R {r})"
    if recipe == "raw":
        return "uint8 RGB -> float 0..255, unchanged (the network rescales and normalises inside)"
    if recipe == "grey01":
        text = "uint8 RGB -> grey (0.299 R + 0.587 G + 0.114 B) -> x / 255"
        if normalize_polarity:
            text += " -> inverted when the border is bright (dark-on-light becomes light-on-dark) -> stretched to [0, 1]"
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
