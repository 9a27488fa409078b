"""Adopting a model from another tool: the `convnet-train adopt` commands and what they print.

The app never imports TensorFlow or onnx, so it adopts by running `convnet-train adopt`
(found by trainer_launcher) as a child: first `--inspect --json --preview-onnx TMP`, which
prints what the source reveals (each setting with where it came from, what is missing)
and writes the original graph as plain ONNX for the live preview; then the real run with
the settings the user confirmed as flags. This module builds those command lines, parses
the inspect JSON into plain data, and runs the child cancellably (desktop/core/child_run.py), so the Qt
dialog only shows state and the rules are tested without a window.

The adopted file is written by the child to a temporary folder beside the destination and
renamed into place only when the child succeeded (`save_adopted`): a cancelled or failed
run leaves nothing behind, and the source is never the destination.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from convnet_common.atomic import write_text_atomic
from convnet_common.safe_json import JsonInputError, loads_limited
from desktop.core.child_run import MAX_OUTPUT_BYTES, ChildResult, one_line, run_child

INSPECT_SCHEMA = 1
LAYOUTS = ("nchw", "nhwc")
CHANNEL_ORDERS = ("rgb", "bgr")
RESIZES = ("stretch", "shorter_side_crop")
OUTPUTS = ("logits", "probabilities")
SETTING_NAMES = ("layout", "input_size", "mean", "std", "channel_order", "resize", "crop_fraction", "output", "labels")
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# Pixel scalings people meet, in the 0-1 units of timm/torchvision: x = (pixel/255 - mean)/std.
MEAN_STD_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "ImageNet (timm/torchvision)": IMAGENET,
    "−1…1": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "0…1": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "0…255": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
}
CUSTOM_PRESET = "Custom"


class AdoptionError(Exception):
    """The source cannot be adopted, or the child failed; the message is one line for the user."""


@dataclass(frozen=True)
class Detected:
    value: Any
    origin: str


@dataclass(frozen=True)
class MissingSetting:
    setting: str
    flag: str
    message: str


@dataclass
class Inspection:
    """What `convnet-train adopt --inspect --json` found in a source (see module docstring)."""

    kind: str
    source: Path
    input_name: str
    input_dtype: str
    input_shape: list[Any]
    class_count: int | None
    settings: dict[str, Detected]
    missing: list[MissingSetting]
    notes: list[str] = field(default_factory=list)
    preview_onnx: Path | None = None


def parse_inspection(text: str) -> Inspection:
    """The inspect JSON as an Inspection, or AdoptionError with its `error` or what is malformed."""
    try:
        data = loads_limited(text.strip() or "null", MAX_OUTPUT_BYTES, "convnet-train adopt output")
    except JsonInputError as error:
        raise AdoptionError(f"convnet-train adopt printed something that is not its JSON report ({error})") from None
    if not isinstance(data, dict):
        raise AdoptionError("convnet-train adopt printed no JSON report")
    if data.get("error"):
        raise AdoptionError(one_line(data["error"]))
    if data.get("schema") != INSPECT_SCHEMA:
        raise AdoptionError(f"convnet-train adopt reports schema {data.get('schema')!r}; this app reads schema 1")
    try:
        tensor = data.get("input") or {}
        settings = {
            name: Detected(entry["value"], one_line(entry.get("origin", ""), 200))
            for name, entry in (data.get("settings") or {}).items()
            if name in SETTING_NAMES and isinstance(entry, dict) and "value" in entry
        }
        missing = [
            MissingSetting(str(m["setting"]), one_line(m.get("flag", "")), one_line(m.get("message", "")))
            for m in data.get("missing") or []
        ]
        count = data.get("class_count")
        return Inspection(
            kind=str(data.get("kind", "")),
            source=Path(str(data.get("source", ""))),
            input_name=str(tensor.get("name", "")),
            input_dtype=str(tensor.get("dtype", "")),
            input_shape=list(tensor.get("shape") or []),
            class_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            settings=settings,
            missing=missing,
            notes=[one_line(note) for note in data.get("notes") or []],
            preview_onnx=Path(data["preview_onnx"]) if data.get("preview_onnx") else None,
        )
    except (AttributeError, KeyError, TypeError) as error:
        raise AdoptionError(f"convnet-train adopt's JSON report is malformed ({one_line(error, 100)})") from None


@dataclass(frozen=True)
class AdoptChoices:
    """The settings as the dialog holds them: detected values, defaults, the user's edits."""

    layout: str = "nchw"
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET[0]
    std: tuple[float, float, float] = IMAGENET[1]
    channel_order: str = "rgb"
    resize: str = "stretch"
    crop_fraction: float = 0.875
    output: str = "logits"
    labels: tuple[str, ...] = ()  # empty: the source's own (or class 0, 1, …)
    labels_edited: bool = False  # typed in the dialog: written to a file and passed as --labels

    @classmethod
    def from_inspection(cls, inspection: Inspection) -> AdoptChoices:
        """Detected values where there are, ImageNet/NCHW/224/logits defaults otherwise."""
        values = {name: detected.value for name, detected in inspection.settings.items()}
        choices = cls()
        changes: dict[str, Any] = {}
        if values.get("layout") in LAYOUTS:
            changes["layout"] = values["layout"]
        elif len(inspection.input_shape) == 4 and inspection.input_shape[-1] in (1, 3):
            changes["layout"] = "nhwc"
        for name in ("input_size", "mean", "std"):
            with contextlib.suppress(TypeError, ValueError):
                number = int if name == "input_size" else float
                wanted = 2 if name == "input_size" else 3
                if isinstance(values.get(name), list) and len(values[name]) == wanted:
                    changes[name] = tuple(number(v) for v in values[name])
        for name, allowed in (("channel_order", CHANNEL_ORDERS), ("output", OUTPUTS)):
            if values.get(name) in allowed:
                changes[name] = values[name]
        resize = str(values.get("resize", "")).replace("-", "_")
        if resize in RESIZES:
            changes["resize"] = resize
        if isinstance(values.get("crop_fraction"), int | float) and 0 < values["crop_fraction"] <= 1:
            changes["crop_fraction"] = float(values["crop_fraction"])
        if isinstance(values.get("labels"), list):
            changes["labels"] = tuple(str(label) for label in values["labels"])
        return replace(choices, **changes)

    def problems(self) -> list[str]:
        """What stops these settings from being used, one line each (empty: fine)."""
        found = []
        if self.layout not in LAYOUTS:
            found.append(f"layout must be one of {', '.join(LAYOUTS)}")
        if any(side < 1 or side > 8192 for side in self.input_size):
            found.append("input size must be 1 to 8,192 pixels a side")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            found.append("mean and std must be numbers")
        if any(abs(v) < 1e-12 for v in self.std):
            found.append("std must not be 0 (the pixels are divided by it)")
        if self.resize not in RESIZES:
            found.append(f"resize must be one of {', '.join(RESIZES)}")
        if not 0 < self.crop_fraction <= 1:
            found.append("crop fraction must be above 0 and at most 1")
        if self.output not in OUTPUTS:
            found.append(f"output must be one of {', '.join(OUTPUTS)}")
        if self.labels_edited and any(not label.strip() for label in self.labels):
            found.append("class names must not be empty")
        return found

    def flags(self, labels_file: Path | None = None) -> list[str]:
        """The `convnet-train adopt` flags for these settings (every one, so the file is what the preview showed)."""
        numbers = [f"{v:.9g}" for v in (*self.mean, *self.std)]
        argv = [
            "--layout",
            self.layout,
            "--input-size",
            str(self.input_size[0]),
            str(self.input_size[1]),
            "--mean",
            *numbers[:3],
            "--std",
            *numbers[3:],
            "--channel-order",
            self.channel_order,
            "--resize",
            self.resize.replace("_", "-"),
            "--output",
            self.output,
        ]
        if self.resize == "shorter_side_crop":
            argv += ["--crop-fraction", f"{self.crop_fraction:.9g}"]
        if labels_file is not None:
            argv += ["--labels", str(labels_file)]
        return argv


def preset_name(mean: Sequence[float], std: Sequence[float]) -> str:
    """The MEAN_STD_PRESETS name these values are, or CUSTOM_PRESET."""
    for name, (preset_mean, preset_std) in MEAN_STD_PRESETS.items():
        if all(
            math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip((*mean, *std), (*preset_mean, *preset_std))
        ):
            return name
    return CUSTOM_PRESET


def still_missing(inspection: Inspection, edited: set[str]) -> list[MissingSetting]:
    """The settings the source did not reveal and the user has not set yet (shown highlighted)."""
    return [m for m in inspection.missing if m.setting not in edited]


def inspect_argv(launcher_argv: Sequence[str], source: Path, preview_onnx: Path) -> list[str]:
    return [*launcher_argv, "adopt", str(source), "--inspect", "--json", "--preview-onnx", str(preview_onnx)]


def adopt_argv(
    launcher_argv: Sequence[str], source: Path, out: Path, choices: AdoptChoices, labels_file: Path | None = None
) -> list[str]:
    return [*launcher_argv, "adopt", str(source), "--out", str(out), *choices.flags(labels_file)]


def write_labels_file(labels: Sequence[str], folder: Path) -> Path:
    """Class names typed in the dialog as a labels.txt for --labels (one per line, atomically)."""
    path = folder / "labels.txt"
    write_text_atomic(path, "".join(f"{label.strip()}\n" for label in labels))
    return path


KERAS_SUFFIXES = (".h5", ".keras")
# Files that make a folder a model export rather than a folder of images.
MODEL_FOLDER_MARKERS = ("saved_model.pb", "signature.json", "keras_model.h5", "model.onnx")


def is_model_folder(path: Path) -> bool:
    """A TensorFlow SavedModel, a Lobe export or a Teachable Machine export (by the files in it)."""
    try:
        return path.is_dir() and any((path / name).is_file() for name in MODEL_FOLDER_MARKERS)
    except OSError:
        return False


def is_model_source(path: Path) -> bool:
    """Whether a dropped or chosen path is a model (to open or adopt) rather than images."""
    return path.suffix.lower() in (".onnx", *KERAS_SUFFIXES) and path.is_file() or is_model_folder(path)


def models_folder() -> Path:
    """Where adopted copies go when the source's folder is not writable: the user's data folder."""
    base = os.environ.get("XDG_DATA_HOME", "").strip() or os.environ.get("LOCALAPPDATA", "").strip()
    return (Path(base) if base else Path.home() / ".local" / "share") / "convnet-studio" / "models"


def default_output_path(source: Path, models_folder: Path) -> Path:
    """`<stem>-adopted.onnx` beside the source, or in `models_folder` when that folder is not writable."""
    stem = source.name if source.is_dir() else source.stem
    beside = (source.parent / f"{stem}-adopted.onnx").resolve()
    folder = beside.parent if os.access(beside.parent, os.W_OK) else models_folder
    return folder / beside.name


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _failure_message(result: ChildResult) -> str:
    """A failed child's one line: its JSON report's `error`, else its last stderr line, else the exit code."""
    try:
        report = loads_limited(result.stdout.strip() or "null", MAX_OUTPUT_BYTES, "output")
    except JsonInputError:
        report = None
    if isinstance(report, dict) and report.get("error"):
        return one_line(report["error"])
    return result.stderr_last_line or f"convnet-train adopt failed (exit code {result.returncode})"


def inspect_source(
    launcher_argv: Sequence[str], source: Path, work_folder: Path, cancel: threading.Event | None = None
) -> Inspection | None:
    """Run the inspect step; the Inspection (None if cancelled), or AdoptionError with the child's one line."""
    preview = work_folder / "preview.onnx"
    try:
        result = run_child(inspect_argv(launcher_argv, source, preview), cancel)
    except OSError as error:
        raise AdoptionError(f"convnet-train could not be started: {one_line(error)}") from None
    if result.cancelled:
        return None
    if result.returncode != 0:
        raise AdoptionError(_failure_message(result))
    inspection = parse_inspection(result.stdout)
    if inspection.preview_onnx is None and preview.is_file():
        inspection.preview_onnx = preview
    return inspection


def save_adopted(
    launcher_argv: Sequence[str],
    source: Path,
    destination: Path,
    choices: AdoptChoices,
    cancel: threading.Event | None = None,
) -> Path | None:
    """Run the real adopt into a temporary folder beside `destination`, then rename into place.

    Returns the destination, None when cancelled (nothing is left behind), or raises
    AdoptionError with the child's one-line message (nothing is written then either).
    """
    if same_file(source, destination) or destination.resolve().is_relative_to(source.resolve()):
        raise AdoptionError("the adopted copy must not replace or go inside the source; choose another file name")
    problems = choices.problems()
    if problems:
        raise AdoptionError(problems[0])
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".adopting-", dir=destination.parent))
    try:
        labels_file = write_labels_file(choices.labels, work) if choices.labels_edited else None
        out = work / destination.name
        try:
            result = run_child(adopt_argv(launcher_argv, source, out, choices, labels_file), cancel)
        except OSError as error:
            raise AdoptionError(f"convnet-train could not be started: {one_line(error)}") from None
        if result.cancelled:
            return None
        if result.returncode != 0 or not out.is_file():
            raise AdoptionError(_failure_message(result))
        os.replace(out, destination)
        return destination
    finally:
        shutil.rmtree(work, ignore_errors=True)
