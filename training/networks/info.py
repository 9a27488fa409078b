"""What a network says about itself: `NetworkInfo`, its description and its constructor.

Each network module defines one (`NETWORK`, or `NETWORKS` for several) below the functions
that build it, and `training.networks` finds them; `training.registry` turns them into
Keras builders. Nothing here imports TensorFlow and a network module imports Keras only
inside its functions, so `convnet-train models` lists the networks in well under a second
instead of building every one of them (half a minute on two cores).

The recorded `parameters` and `multiply_adds` are checked against the built networks by
tests/training/test_networks.py, so they cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    summary: str
    family: str  # groups related networks in listings
    reference: str  # the paper
    default_image_size: int
    min_image_size: int
    # "tf": x/127.5 - 1; "caffe": RGB->BGR minus the ImageNet means; "raw": 0..255
    # unchanged (the network normalises inside); "grey01": luma, then x/255.
    preprocessing: str
    last_conv_layer: str  # the map Grad-CAM uses; the base ends here
    # The full network as published (its original top, `top_classes` classes, at the
    # default size): parameters, and multiply-adds for one image (conv and dense layers) --
    # the machine-independent speed hint `convnet-train models` prints.
    parameters: int
    multiply_adds: int
    top_classes: int = 1000
    # The keras.applications constructor, for networks with published ImageNet weights;
    # None for networks built from scratch in this package.
    keras_application: str | None = None
    # A network built here: (input tensor) -> the base's feature map, ending at
    # `last_conv_layer`; and (classes) -> the head's layers, the last one named "logits".
    # Keras is imported inside them, not when the description is read.
    features: Callable | None = None
    head: Callable[[int], list] | None = None
    # Layers inside the base feeding auxiliary classifiers (training only, never exported),
    # and (classes, index, tap shape (h, w, c) or None) -> that classifier's layers.
    aux_taps: tuple[str, ...] = ()
    aux_head: Callable[..., list] | None = None
    # Where `convnet-train models` lists it: lower first; equal positions keep the order of
    # the modules' names.
    listing_position: int = 100
    # Epochs tests/training/test_networks.py gives a from-scratch network to learn the digits
    # at `min_image_size` (a new network needs more only if it learns slowly).
    digits_test_epochs: int = 5
    # An earlier layer of the base, on a finer grid than `last_conv_layer`, where the export
    # adds LayerCAM maps (`cam_fine`, training.fine_cam); None for none. The layers after it
    # must be a plain chain of convolutions and non-overlapping pooling.
    fine_cam_layer: str | None = None

    @property
    def pretrained(self) -> bool:
        return self.keras_application is not None

    @property
    def default_weights(self) -> str:
        """What `--weights` means when not given: ImageNet where there is such a thing."""
        return "imagenet" if self.pretrained else "none"


def speed_hint(multiply_adds: int) -> str:
    """Multiply-adds per image as a short figure with a word for newcomers."""
    giga = multiply_adds / 1e9
    figure = (
        f"{giga:.1f} G"
        if giga >= 0.95
        else f"{multiply_adds / 1e6:.0f} M"
        if multiply_adds >= 1e6
        else (f"{multiply_adds / 1e3:.0f} k")
    )
    word = "very fast" if giga < 0.05 else "fast" if giga < 1 else "moderate" if giga < 5 else "slow"
    return f"{figure} ({word})"
