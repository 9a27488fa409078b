"""Resolve the settings of an adoption: flags over what the source revealed over safe defaults.

Each setting ends up with a value and an origin the user reads ("from --mean", "the input
tensor's shape", "default: …"); a flag that replaces a detected value is recorded so the
printout can say so. What is neither given nor detected, and has no default a person
would expect (layout, size and pixel scaling do not), is `missing`: the message names the
flag to give. `convnet-train adopt --inspect --json` prints this resolution as it stands;
a normal run stops at the first missing setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convnet_common.model_format import MAX_INPUT_SIDE
from training.adopt import check, graph_facts, labels
from training.adopt.source import AdoptError, AdoptSettings, AdoptSource, Detected

DEFAULT_CROP_FRACTION = 0.875  # timm's and torchvision's evaluation crop (224 of 256)
PROBE_IMAGES = 8
SCALING_HINT = (
    "0-1 units: x = (pixel/255 - mean)/std; a -1...1 model is --mean 0.5 0.5 0.5 --std 0.5 0.5 0.5, "
    "a 0-1 model --mean 0 0 0 --std 1 1 1, timm/torchvision --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225"
)


@dataclass
class AdoptFlags:
    """What the command line gave; None for a flag not given."""

    labels_file: Path | None = None
    layout: str | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    channel_order: str | None = None
    resize: str | None = None
    crop_fraction: float | None = None
    output: str | None = None


@dataclass(frozen=True)
class Missing:
    setting: str
    flag: str
    message: str


@dataclass
class Resolution:
    """The settings as far as they are known, with origins; what is missing; notes to print."""

    source: AdoptSource
    values: dict[str, Detected] = field(default_factory=dict)
    overridden: dict[str, Detected] = field(default_factory=dict)  # detected values a flag replaced
    missing: list[Missing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    class_count: int | None = None
    channels: int = 3
    fixed_batch: int | None = None

    def settings(self) -> AdoptSettings:
        """Every setting resolved, or AdoptError with the first missing one's message."""
        if self.missing:
            raise AdoptError(self.missing[0].message)
        v = {name: detected.value for name, detected in self.values.items()}
        return AdoptSettings(
            layout=v["layout"],
            input_size=tuple(v["input_size"]),
            mean=tuple(v["mean"]),
            std=tuple(v["std"]),
            channel_order=v["channel_order"],
            resize=v["resize"],
            crop_fraction=float(v["crop_fraction"]),
            output=v["output"],
            labels=list(v["labels"]),
            input_dtype=v["input_dtype"],
        )


def _check_numbers(flags: AdoptFlags) -> None:
    for name in ("mean", "std"):
        values = getattr(flags, name)
        if values is not None and not all(math.isfinite(x) for x in values):
            raise AdoptError(f"--{name} must be three finite numbers, got {' '.join(map(str, values))}")
    if flags.std is not None and min(flags.std) <= 0:
        raise AdoptError(f"--std must be above 0 for every channel, got {' '.join(map(str, flags.std))}")
    if flags.input_size is not None and not all(0 < side <= MAX_INPUT_SIDE for side in flags.input_size):
        raise AdoptError(f"--input-size must be two numbers from 1 to {MAX_INPUT_SIDE}, got {flags.input_size}")
    if flags.crop_fraction is not None and not 0 < flags.crop_fraction <= 1:
        raise AdoptError(f"--crop-fraction must be above 0 and at most 1, got {flags.crop_fraction}")


class _Resolver:
    def __init__(self, source: AdoptSource, flags: AdoptFlags):
        self.source, self.flags = source, flags
        self.result = Resolution(source, notes=list(source.notes))
        self.name = source.path.name

    def pick(self, setting: str, flag_value, flag_name: str, default=None, default_origin: str = ""):
        """Flag > detected > default; records the value and origin, and a detected value a flag replaced."""
        detected = self.source.detected.get(setting)
        if flag_value is not None:
            self.result.values[setting] = Detected(flag_value, f"{flag_name} (given)")
            if detected is not None and detected.value != flag_value:
                self.result.overridden[setting] = detected
        elif detected is not None:
            self.result.values[setting] = detected
        elif default is not None:
            self.result.values[setting] = Detected(default, default_origin)
        return self.result.values.get(setting, Detected(None, "")).value

    def need(self, setting: str, flag: str, message: str) -> None:
        self.result.missing.append(Missing(setting, flag, message))


def resolve(source: AdoptSource, flags: AdoptFlags, guard: Callable[[AdoptSettings, int], None] | None = None):
    """The Resolution for `source` under `flags`. AdoptError only for flags that contradict the model.

    `guard(partial_settings, channels)`, when given, runs before the original is first run
    here (to tell logits from probabilities, or count classes): the pipeline's guarded probe.
    """
    _check_numbers(flags)
    r = _Resolver(source, flags)
    result = r.result
    image = graph_facts.image_input(source.graph.graph, r.name)
    scores = graph_facts.tensor_facts(source.graph.graph.output[0])
    result.fixed_batch = image.shape[0]
    result.class_count = graph_facts.class_count(scores)
    r.pick("input_dtype", None, "", graph_facts.FLOAT_TYPES[image.elem_type], f"the input tensor {image.describe()}")

    layout = r.pick("layout", flags.layout, "--layout")
    if layout is None:
        r.need(
            "layout",
            "--layout nchw|nhwc",
            f"cannot tell whether {r.name}'s input {image.describe()} is NCHW or NHWC: give --layout nchw or --layout nhwc",
        )
    else:
        result.channels = graph_facts.check_image_shape(image, layout, r.name)
        fixed = graph_facts.spatial_size(image.shape, layout)
        if flags.input_size is not None and any(f and f != g for f, g in zip(fixed, flags.input_size)):
            raise AdoptError(
                f"{r.name}'s input {image.describe()} is fixed at {fixed[0]}x{fixed[1]}; "
                f"--input-size {flags.input_size[0]} {flags.input_size[1]} does not fit it"
            )
        if all(fixed) and "input_size" not in source.detected:
            source.detected["input_size"] = Detected(tuple(fixed), f"the input tensor's shape {image.describe()}")
    size = r.pick("input_size", flags.input_size, "--input-size")
    if size is None and layout is not None:
        r.need(
            "input_size",
            "--input-size H W",
            f"{r.name}'s input {image.describe()} has no fixed height and width: give --input-size H W (e.g. 224 224)",
        )

    mean = r.pick("mean", flags.mean, "--mean")
    std = r.pick("std", flags.std, "--std")
    if mean is None or std is None:
        which = "--mean and --std" if mean is None and std is None else ("--mean" if mean is None else "--std")
        r.need(
            "mean" if mean is None else "std",
            "--mean R G B" if mean is None else "--std R G B",
            f"cannot tell the pixel scaling of {r.name}: give {which} ({SCALING_HINT})",
        )
        if mean is None and std is None:
            result.missing.append(Missing("std", "--std R G B", result.missing[-1].message))
    r.pick(
        "channel_order",
        flags.channel_order,
        "--channel-order",
        "rgb",
        "default: RGB (Caffe- and OpenCV-trained models take --channel-order bgr)",
    )
    resize = r.pick(
        "resize", flags.resize, "--resize", "stretch", "default: the whole picture stretched to the input size"
    )
    r.pick(
        "crop_fraction",
        flags.crop_fraction,
        "--crop-fraction",
        DEFAULT_CROP_FRACTION,
        "default: 0.875, as timm and torchvision evaluate",
    )
    if flags.crop_fraction is not None and resize != "shorter-side-crop":
        result.notes.append("--crop-fraction is used only with --resize shorter-side-crop")

    output = r.pick("output", flags.output, "--output")
    runnable = layout is not None and size is not None
    if runnable and (output is None or result.class_count is None):
        _probe_original(r, guard)
    elif output is None:
        r.need(
            "output",
            "--output logits|probabilities",
            f"cannot tell whether {r.name} gives logits or probabilities: give --output",
        )
    _resolve_labels(r)
    return result


def _probe_original(r: _Resolver, guard) -> None:
    """Run the original on a few test images: its class count, and logits or probabilities."""
    v = r.result.values
    partial = AdoptSettings(
        layout=v["layout"].value,
        input_size=tuple(v["input_size"].value),
        mean=tuple(v["mean"].value) if "mean" in v else (0.0, 0.0, 0.0),
        std=tuple(v["std"].value) if "std" in v else (1.0, 1.0, 1.0),
        channel_order=v["channel_order"].value,
        resize="stretch",
        crop_fraction=DEFAULT_CROP_FRACTION,
        output="probabilities",
        labels=[],
        input_dtype=v["input_dtype"].value,
    )
    if guard is not None:
        guard(partial, r.result.channels)
    images = check.check_images(*partial.input_size, count=PROBE_IMAGES)
    scores = check.expected_probabilities(r.source, partial, images, r.result.channels)
    r.result.class_count = scores.shape[1]
    if "output" not in v:
        is_probabilities, evidence = check.looks_like_probabilities(np.asarray(scores))
        v["output"] = Detected("probabilities" if is_probabilities else "logits", evidence)


def _resolve_labels(r: _Resolver) -> None:
    count = r.result.class_count
    if r.flags.labels_file is not None:
        names = labels.read_label_file(r.flags.labels_file)
        found = r.pick("labels", names, f"--labels {r.flags.labels_file.name}")
    else:
        found = r.pick("labels", None, "")
    origin = r.result.values["labels"].origin if found is not None else ""
    if found is not None and count is not None and len(found) != count:
        where = origin.removesuffix(" (given)").removesuffix(" beside the model")
        del r.result.values["labels"]
        r.need(
            "labels",
            "--labels FILE",
            f"{where} has {len(found)} names but {r.name} gives {count} scores: give --labels FILE with {count} names",
        )
    elif found is None and count is not None:
        r.result.values["labels"] = Detected(
            labels.made_up_labels(count), f"made up (class 0 … class {count - 1}): no label file found, no --labels"
        )
        r.result.notes.append(
            f"class names were made up (class 0 … class {count - 1}): give --labels FILE to name them"
        )
