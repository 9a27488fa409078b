"""The keras.applications networks: published ImageNet weights, fine-tuned in two stages.

Only their descriptions live here (no TensorFlow import); `training.registry` builds them
from `keras_application`, cutting the base at `last_conv_layer` (VGG: before its last
max-pool, which the exported Grad-CAM cannot differentiate through).
"""

from __future__ import annotations

from training.networks.info import NetworkInfo


def _application(
    name, constructor, summary, family, reference, size, min_size, preprocessing, last_conv, parameters, multiply_adds
) -> NetworkInfo:
    return NetworkInfo(
        name=name,
        summary=summary,
        family=family,
        reference=reference,
        default_image_size=size,
        min_image_size=min_size,
        preprocessing=preprocessing,
        last_conv_layer=last_conv,
        parameters=parameters,
        multiply_adds=multiply_adds,
        keras_application=constructor,
        listing_position=0,
    )


NETWORKS: tuple[NetworkInfo, ...] = (
    _application(
        "mobilenet_v2",
        "MobileNetV2",
        "MobileNetV2 (keras.applications): depthwise-separable, inverted residuals",
        "MobileNet",
        "Sandler et al., 2018",
        224,
        32,
        "tf",
        "out_relu",
        3_538_984,
        300_774_272,
    ),
    _application(
        "resnet50",
        "ResNet50",
        "ResNet-50 (keras.applications): bottleneck residual blocks with skip connections",
        "ResNet",
        "He et al., 2016",
        224,
        32,
        "caffe",
        "conv5_block3_out",
        25_636_712,
        3_857_973_248,
    ),
    _application(
        "xception",
        "Xception",
        "Xception (keras.applications): 'extreme inception', depthwise-separable convolutions",
        "Inception",
        "Chollet, 2017",
        299,
        71,
        "tf",
        "block14_sepconv2_act",
        22_910_480,
        8_357_403_496,
    ),
    _application(
        "vgg16",
        "VGG16",
        "VGG-16 (keras.applications): 13 3x3 convolutions in 5 blocks; base cut before the last max-pool",
        "VGG",
        "Simonyan & Zisserman, 2015",
        224,
        32,
        "caffe",
        "block5_conv3",
        138_357_544,
        15_470_264_320,
    ),
    _application(
        "vgg19",
        "VGG19",
        "VGG-19 (keras.applications): 16 3x3 convolutions in 5 blocks; base cut before the last max-pool",
        "VGG",
        "Simonyan & Zisserman, 2015",
        224,
        32,
        "caffe",
        "block5_conv4",
        143_667_240,
        19_632_062_464,
    ),
    _application(
        "inception_v3",
        "InceptionV3",
        "Inception v3 (keras.applications): factorised inception modules",
        "Inception",
        "Szegedy et al., 2016",
        299,
        75,
        "tf",
        "mixed10",
        23_851_784,
        5_713_216_096,
    ),
    _application(
        "efficientnet_b0",
        "EfficientNetB0",
        "EfficientNet-B0 (keras.applications): compound-scaled MBConv blocks, normalises inside",
        "EfficientNet",
        "Tan & Le, 2019",
        224,
        32,
        "raw",
        "top_activation",
        5_330_571,
        385_814_752,
    ),
)
