"""What `convnet-train models` and `convnet-train summary` print: the registered networks and
their layer tables.

The listing reads what each network records about itself (`training.networks.NETWORKS`)
and needs no TensorFlow; the layer tables build the model with random weights
(weights=None), so nothing is downloaded. `parameter_count` and `count_multiply_adds`
measure built models; the tests use them to keep the recorded figures honest.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.networks import NETWORKS
from training.networks.info import speed_hint

if TYPE_CHECKING:  # the registry imports TensorFlow; only building a model needs it
    from training import registry

SUMMARY_WIDTH = 150


@dataclass(frozen=True)
class ModelRow:
    name: str
    family: str
    summary: str
    default_image_size: int
    min_image_size: int
    preprocessing: str
    last_conv_layer: str
    # "pretrained" (ImageNet weights available) or "from scratch".
    training: str
    top_classes: int
    # Parameters of the full network with its original top (top_classes classes) at the
    # default size; None when listed with with_params=False.
    parameters: int | None = None
    # Multiply-adds for one image of the default size (the speed hint); None as above.
    multiply_adds: int | None = None
    # What --weights means when not given: "imagenet" for pretrained networks, else "none".
    default_weights: str = "none"


def _top_classes(backbone: registry.Backbone, classes: int | None) -> int:
    return classes or backbone.top_classes


@functools.cache
def parameter_count(
    name: str, classes: int | None = None, include_top: bool = True, image_size: int | None = None
) -> int:
    """Parameters of the network: with `include_top`, the original network (`summary_text`'s
    include_top=True); otherwise our fine-tuning classifier (`build_classifier`)."""
    model = _build(name, classes, include_top, image_size)
    count = int(model.count_params())
    del model
    gc.collect()
    return count


def count_multiply_adds(model) -> int:
    """Multiply-adds of one forward pass for one image: convolutions and dense layers.

    The usual measure of a network's cost (MobileNetV2 at 224: 0.3 G, VGG16: 15.5 G);
    element-wise work (activations, batch norm, pooling) is left out, as in the papers.
    Nested models are counted layer by layer.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_multiply_adds(layer)
            continue
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        inputs, outputs = layer.input.shape[-1], layer.output.shape[-1]
        positions = math.prod(layer.output.shape[1:-1])
        if kind == "Dense":
            total += positions * inputs * outputs
            continue
        taps = math.prod(layer.kernel_size)
        if kind == "Conv2D":
            total += positions * taps * (inputs // layer.groups) * outputs
        elif kind == "DepthwiseConv2D":
            total += positions * taps * inputs * layer.depth_multiplier
        else:  # SeparableConv2D: depthwise, then pointwise
            middle = inputs * layer.depth_multiplier
            total += positions * (taps * middle + middle * outputs)
    return int(total)


def _build(name: str, classes: int | None, include_top: bool, image_size: int | None):
    from training import registry

    backbone = registry.get_backbone(name)
    classes = _top_classes(backbone, classes)
    size = image_size or backbone.default_image_size
    if include_top:
        return backbone.build_full_model(classes, include_top=True, image_size=size)
    from training.model_builder import build_classifier

    return build_classifier(backbone, classes, size, weights=None)


def list_models(with_params: bool = True) -> list[ModelRow]:
    """One row per network, in registry order, from what each network records about itself
    (nothing is built, TensorFlow is not imported)."""
    return [
        ModelRow(
            name=info.name,
            family=info.family,
            summary=info.summary,
            default_image_size=info.default_image_size,
            min_image_size=info.min_image_size,
            preprocessing=info.preprocessing,
            last_conv_layer=info.last_conv_layer,
            training="pretrained" if info.pretrained else "from scratch",
            top_classes=info.top_classes,
            parameters=info.parameters if with_params else None,
            multiply_adds=info.multiply_adds if with_params else None,
            default_weights=info.default_weights,
        )
        for info in NETWORKS.values()
    ]


def format_models_table(rows: list[ModelRow], width: int | None = None) -> str:
    """The `models` listing. With `width` (a terminal's columns), descriptions are cut with
    "…" so that no line wraps; a wrapped table is unreadable, the other columns matter more."""
    headers = ("name", "family", "input", "min", "parameters", "multiply-adds", "training", "description")
    table = [
        (
            row.name,
            row.family,
            f"{row.default_image_size}x{row.default_image_size}",
            str(row.min_image_size),
            "-" if row.parameters is None else f"{row.parameters:,} ({row.top_classes} classes)",
            "-" if row.multiply_adds is None else speed_hint(row.multiply_adds),
            row.training,
            row.summary,
        )
        for row in rows
    ]
    widths = [max(len(header), *(len(cells[i]) for cells in table)) for i, header in enumerate(headers)]
    if width is not None:
        room = width - sum(widths[:-1]) - 2 * (len(widths) - 1)
        if room < widths[-1]:
            room = max(room, len(headers[-1]))
            table = [
                (*cells[:-1], cells[-1] if len(cells[-1]) <= room else cells[-1][: room - 1] + "…") for cells in table
            ]
            widths[-1] = room
    right = {3}  # numbers read better right-aligned

    def line(cells) -> str:
        parts = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(cells) for cells in table)
    return "\n".join(out)


MODELS_JSON_VERSION = 1


def models_json(rows: list[ModelRow]) -> str:
    """`convnet-train models --json`: the listing as one JSON document for programs (the
    app's Train tab), which should not have to read the table's columns. Fields are only
    added within a version; parameters and multiply_adds (with "speed", the table's hint)
    are null under --no-params. ASCII only, so no console encoding can garble it."""
    networks = [
        {
            "name": row.name,
            "family": row.family,
            "imagenet_weights": row.training == "pretrained",
            "default_weights": row.default_weights,
            "input_size": row.default_image_size,
            "min_input_size": row.min_image_size,
            "top_classes": row.top_classes,
            "parameters": row.parameters,
            "multiply_adds": row.multiply_adds,
            "speed": None if row.multiply_adds is None else speed_hint(row.multiply_adds),
            "description": row.summary,
        }
        for row in rows
    ]
    return json.dumps({"version": MODELS_JSON_VERSION, "networks": networks}, indent=1)


def summary_text(
    name: str, classes: int | None = None, include_top: bool = False, image_size: int | None = None
) -> str:
    """Keras's layer table (output shapes, parameter counts, totals) for one network.

    include_top=True: the network as published with its original top (keras.applications
    `include_top=True`; from-scratch nets with their own head), `classes` defaulting to 1000
    (10 for lenet5 / mnist_convnet). Otherwise the fine-tuning classifier `build_classifier`
    makes, nested base expanded.
    """
    from training import registry

    backbone = registry.get_backbone(name)
    model = _build(name, classes, include_top, image_size)
    lines: list[str] = []

    def collect(text: str = "", line_break: bool = True) -> None:
        lines.append(text)

    size = image_size or backbone.default_image_size
    what = "original network with its top" if include_top else "fine-tuning classifier (build_classifier)"
    header = (
        f"{backbone.name}: {backbone.summary}\n"
        f"{what}, {_top_classes(backbone, classes)} classes, input {size}x{size}, "
        f"preprocessing {backbone.preprocessing!r}, Grad-CAM layer {backbone.last_conv_layer!r}"
    )
    # Rich sizes the captured table to the terminal (80 columns when piped); give it room
    # for the parameter and "Connected to" columns.
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(SUMMARY_WIDTH)
    try:
        model.summary(print_fn=collect, expand_nested=not include_top, line_length=SUMMARY_WIDTH)
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    del model
    gc.collect()
    return header + "\n" + "\n".join(text.rstrip("\n") for text in lines)
