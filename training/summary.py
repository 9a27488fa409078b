"""What `convnet-train models` and `convnet-train summary` print: the registered networks and
their layer tables. Models are built with random weights (weights=None); nothing is downloaded.
"""

from __future__ import annotations

import functools
import gc
import os
from dataclasses import dataclass

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


def _top_classes(backbone: registry.Backbone, classes: int | None) -> int:
    return classes or backbone.top_classes


@functools.lru_cache(maxsize=None)
def parameter_count(name: str, classes: int | None = None, include_top: bool = True, image_size: int | None = None) -> int:
    """Parameters of the network: with `include_top`, the original network (`summary_text`'s
    include_top=True); otherwise our fine-tuning classifier (`build_classifier`)."""
    model = _build(name, classes, include_top, image_size)
    count = int(model.count_params())
    del model
    gc.collect()
    return count


def _build(name: str, classes: int | None, include_top: bool, image_size: int | None):
    backbone = registry.get_backbone(name)
    classes = _top_classes(backbone, classes)
    size = image_size or backbone.default_image_size
    if include_top:
        return backbone.build_full_model(classes, include_top=True, image_size=size)
    from training.model_builder import build_classifier

    return build_classifier(backbone, classes, size, weights=None)


def list_models(with_params: bool = True) -> list[ModelRow]:
    """One row per registered network, in registry order. Counting parameters builds every
    network once (cached per process; about half a minute on two CPU cores)."""
    rows = []
    for backbone in registry.BACKBONES.values():
        rows.append(
            ModelRow(
                name=backbone.name,
                family=backbone.family,
                summary=backbone.summary,
                default_image_size=backbone.default_image_size,
                min_image_size=backbone.min_image_size,
                preprocessing=backbone.preprocessing,
                last_conv_layer=backbone.last_conv_layer,
                training="pretrained" if backbone.supports_imagenet else "from scratch",
                top_classes=backbone.top_classes,
                parameters=parameter_count(backbone.name, backbone.top_classes, True) if with_params else None,
            )
        )
    return rows


def format_models_table(rows: list[ModelRow]) -> str:
    headers = ("name", "family", "input", "min", "parameters", "training", "description")
    table = [
        (
            row.name,
            row.family,
            f"{row.default_image_size}x{row.default_image_size}",
            str(row.min_image_size),
            "-" if row.parameters is None else f"{row.parameters:,} ({row.top_classes} classes)",
            row.training,
            row.summary,
        )
        for row in rows
    ]
    widths = [max(len(header), *(len(cells[i]) for cells in table)) for i, header in enumerate(headers)]
    right = {3}  # numbers read better right-aligned

    def line(cells) -> str:
        parts = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(cells) for cells in table)
    return "\n".join(out)


def summary_text(name: str, classes: int | None = None, include_top: bool = False, image_size: int | None = None) -> str:
    """Keras's layer table (output shapes, parameter counts, totals) for one network.

    include_top=True: the network as published with its original top (keras.applications
    `include_top=True`; from-scratch nets with their own head), `classes` defaulting to 1000
    (10 for lenet5 / mnist_convnet). Otherwise the fine-tuning classifier `build_classifier`
    makes, nested base expanded.
    """
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
