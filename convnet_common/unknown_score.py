"""The optional "unknown" extra of the model-file contract: a score output and its metadata.

A model may have an output `unknown_score` (float32 [N], higher = more unlike the
training data) and a metadata entry `unknown` (JSON: method, threshold, accept_rate,
quantiles, images) saying where the exporter put the threshold and how the validation
images scored. An image scoring over the threshold is UNKNOWN. A file without both has
no unknown verdict and works as before. A file may also carry `calibration` (JSON:
method, temperature, ece_before, ece_after), which readers only show.

Kept apart from model_contract.py so the rules for this optional part (and the share of
validation images a threshold accepts, which the app's threshold dialog shows) can be
read and tested on their own. Plain Python and NumPy: no onnx, no onnxruntime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convnet_common import model_format as fmt

QUANTILE_COUNT = 101  # the validation scores at 0 %, 1 %, … 100 %
# The names training writes (training/unknown_score.py, training/calibration.py); spelled
# here too so this reader does not wait on model_format's copy of them.
UNKNOWN_OUTPUT = "unknown_score"
KEY_UNKNOWN = "unknown"
KEY_CALIBRATION = "calibration"


class UnknownSpecError(ValueError):
    """A malformed `unknown` metadata entry; the message is one line without the file name."""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class UnknownSpec:
    """The checked `unknown` entry: the exporter's threshold and the validation-score quantiles."""

    method: str
    threshold: float
    accept_rate: float
    quantiles: tuple[float, ...]  # QUANTILE_COUNT values, non-decreasing
    images: int

    @property
    def score_range(self) -> tuple[float, float]:
        """The lowest and highest validation score: the range a threshold slider covers."""
        return self.quantiles[0], self.quantiles[-1]

    def accepted_share(self, threshold: float) -> float:
        """The share of validation images scoring at or under `threshold` (kept as known).

        Interpolated linearly between the quantiles: at quantile q % the share is q/100;
        below the lowest score none is accepted, above the highest all are.
        """
        return accepted_share(self.quantiles, threshold)


def accepted_share(quantiles: tuple[float, ...] | list[float], threshold: float) -> float:
    """See UnknownSpec.accepted_share; flat runs of equal quantiles count to their top."""
    values = np.asarray(quantiles, dtype=np.float64)
    if threshold < values[0]:
        return 0.0
    if threshold >= values[-1]:
        return 1.0
    shares = np.linspace(0.0, 1.0, len(values))
    # np.interp wants strictly increasing x; a flat run means all of it is accepted at that score.
    upper = int(np.searchsorted(values, threshold, side="right"))  # first quantile above
    lower = upper - 1
    low, high = values[lower], values[upper]
    fraction = 0.0 if high <= low else (threshold - low) / (high - low)
    return float(shares[lower] + fraction * (shares[upper] - shares[lower]))


def read_unknown(metadata: Mapping[str, str]) -> UnknownSpec | None:
    """The checked `unknown` entry, None when absent; UnknownSpecError when malformed.

    Every number must be finite: a NaN threshold would make `score > threshold` false for
    every image, so nothing would ever be called unknown.
    """
    if KEY_UNKNOWN not in metadata:
        return None
    key = f"model metadata '{KEY_UNKNOWN}'"
    try:
        data = fmt.metadata_json(metadata, KEY_UNKNOWN, dict, "a JSON object")
    except fmt.MetadataError as error:
        raise UnknownSpecError(str(error)) from None
    method, threshold, rate = data.get("method"), data.get("threshold"), data.get("accept_rate")
    quantiles, images = data.get("quantiles"), data.get("images")
    if not isinstance(method, str) or not method:
        raise UnknownSpecError(f"{key} needs a 'method' (text)")
    if not _finite(threshold):
        raise UnknownSpecError(f"{key} needs a finite number 'threshold'")
    if not _finite(rate) or not 0.0 < rate <= 1.0:
        raise UnknownSpecError(f"{key} needs an 'accept_rate' between 0 and 1")
    if (
        not isinstance(quantiles, list)
        or len(quantiles) != QUANTILE_COUNT
        or not all(_finite(value) for value in quantiles)
    ):
        raise UnknownSpecError(f"{key} needs 'quantiles': {QUANTILE_COUNT} finite numbers (0 %, 1 %, … 100 %)")
    if any(b < a for a, b in zip(quantiles, quantiles[1:])):
        raise UnknownSpecError(f"{key} 'quantiles' must not decrease")
    if not isinstance(images, int) or isinstance(images, bool) or images < 0:
        raise UnknownSpecError(f"{key} needs 'images' (a whole number of validation images)")
    return UnknownSpec(
        fmt.printable(method, 40), float(threshold), float(rate), tuple(float(v) for v in quantiles), images
    )


def read_calibration(metadata: Mapping[str, str]) -> dict[str, Any] | None:
    """The `calibration` entry's known fields (method text, finite numbers), None when absent.

    Only shown to the user, never used to compute: an entry that is not a JSON object, or
    fields of the wrong type, are left out rather than refusing the model.
    """
    if KEY_CALIBRATION not in metadata:
        return None
    try:
        data = fmt.metadata_json(metadata, KEY_CALIBRATION, dict, "a JSON object")
    except fmt.MetadataError:
        return None
    checked: dict[str, Any] = {}
    if isinstance(data.get("method"), str):
        checked["method"] = fmt.printable(data["method"], 40)
    for name in ("temperature", "ece_before", "ece_after"):
        if _finite(data.get(name)):
            checked[name] = float(data[name])
    return checked or None


def score_problems(scores: np.ndarray, rows: int) -> list[str | None] | str:
    """Per row: None for a finite score, else what is wrong; a string when the shape is wrong.

    A NaN score is an error for that image, never a verdict (`nan > threshold` is false,
    so it would pass as known).
    """
    scores = np.asarray(scores)
    if scores.shape != (rows,):
        return f"output '{UNKNOWN_OUTPUT}' must be [N]; it gives {list(scores.shape)} for {rows} images"
    finite = np.isfinite(scores.astype(np.float64))
    return [None if ok else "the model's unknown score is not a finite number (NaN or infinity)" for ok in finite]
