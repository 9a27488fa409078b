"""Calibrated probabilities: temperature scaling, ECE, NLL and reliability bins (numpy only).

A network trained to low cross-entropy is usually over-confident: "97 %" is right far
less than 97 % of the time. Temperature scaling (Guo et al., "On Calibration of Modern
Neural Networks", 2017) divides the logits by one number T > 0 before the softmax,
fitted to minimise the negative log-likelihood (NLL) on the validation split. It is
the calibration chosen here because it has one parameter (it cannot overfit a small
validation split the way per-class or histogram-binning schemes do), it never changes
which class wins (accuracy, top-k and the cam are untouched), and it is one division
inside the exported graph, so every reader of the file gets the calibrated numbers.

NLL as a function of beta = 1/T is convex (log-sum-exp of a linear function minus a
linear function); T = exp(u) is monotone in u, so NLL is unimodal in log T and a
golden-section search over log T finds the minimum without derivatives or scipy.

ECE (expected calibration error) uses ECE_BINS = 15 equal-width confidence bins over
[0, 1] (Guo et al.'s choice): sum over bins of (share of images in the bin) x
|accuracy - mean confidence| in that bin, for the top-1 class.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ECE_BINS = 15
# Below this many validation images, or with one class present, T is not fitted (kept at 1):
# the NLL of a handful of images says more about those images than about the model.
MIN_IMAGES = 20
# The search range for T; a fit at either end means the logits carry (almost) no information.
T_MIN, T_MAX = 0.05, 20.0
# Probabilities are floored here before a log (a float32 softmax underflows to 0 beyond
# a logit gap of about 100; the NLL of such an image is then large but finite).
TINY = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def logits_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """log p: the logits up to a per-row constant, which no softmax sees (softmax(log p / T)
    == softmax(z / T) for p = softmax(z)); how a file's probabilities are re-tempered."""
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), TINY))


def nll(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (natural log)."""
    p = np.asarray(probabilities, dtype=np.float64)[np.arange(len(truth)), truth]
    return float(-np.mean(np.log(np.maximum(p, TINY))))


def nll_of_logits(logits: np.ndarray, truth: np.ndarray, temperature: float = 1.0) -> float:
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-np.mean(logp[np.arange(len(truth)), truth]))


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float | None  # mean top-1 probability in the bin; None when empty
    accuracy: float | None


def reliability_bins(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Top-1 confidence and accuracy per equal-width bin; bin i holds (i/bins, (i+1)/bins]
    (the first also 0)."""
    p = np.asarray(probabilities, dtype=np.float64)
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == np.asarray(truth)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    result = []
    for i in range(bins):
        member = index == i
        count = int(member.sum())
        result.append(
            ReliabilityBin(
                i / bins,
                (i + 1) / bins,
                count,
                float(confidence[member].mean()) if count else None,
                float(correct[member].mean()) if count else None,
            )
        )
    return result


def ece(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over `bins` equal-width bins (module docstring)."""
    total = len(truth)
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.confidence)
            for b in reliability_bins(probabilities, truth, bins)
            if b.count
        )
    )


def fit_temperature(logits: np.ndarray, truth: np.ndarray, tolerance: float = 1e-5) -> float:
    """The T in [T_MIN, T_MAX] minimising NLL(softmax(logits / T)): golden-section on log T."""
    logits, truth = np.asarray(logits, dtype=np.float64), np.asarray(truth)
    low, high = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll_of_logits(logits, truth, math.exp(a)), nll_of_logits(logits, truth, math.exp(b))
    while high - low > tolerance:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll_of_logits(logits, truth, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll_of_logits(logits, truth, math.exp(b))
    return math.exp((low + high) / 2.0)


@dataclass
class Calibration:
    """What result.json's and the model file's `calibration` entry hold (docs/model-format.md)."""

    method: str  # "temperature", or "none" when T was kept at 1 (`reason` says why)
    temperature: float
    images: int
    ece_before: float | None = None
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None
    bins: int = ECE_BINS
    fitted_on: str = "validation split"
    reason: str | None = None

    def to_dict(self) -> dict:
        values = asdict(self)
        for key in ("temperature", "ece_before", "ece_after", "nll_before", "nll_after"):
            if values[key] is not None:
                values[key] = round(values[key], 6)
        if values["reason"] is None:
            del values["reason"]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Calibration:
        """A stored entry, checked: ValueError when it is not one this module wrote."""
        temperature = values.get("temperature") if isinstance(values, dict) else None
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError("calibration has no numeric 'temperature'")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"calibration temperature must be a finite number above 0, got {temperature}")
        known = {key: values[key] for key in cls.__dataclass_fields__ if key in values}
        known["temperature"] = float(temperature)
        known.setdefault("method", "temperature")
        known.setdefault("images", 0)
        return cls(**known)


def fit_calibration(logits: np.ndarray, truth: np.ndarray, fitted_on: str = "validation split") -> Calibration:
    """Fit T on (logits, truth), or keep T = 1 with the reason when the split cannot support a fit."""
    logits, truth = np.asarray(logits, dtype=np.float64), np.asarray(truth, dtype=np.int64)
    n = len(truth)
    before = softmax(logits) if n else None
    measured = {}
    if n:
        measured = {"ece_before": ece(before, truth), "nll_before": nll_of_logits(logits, truth)}
    reason = None
    if n < MIN_IMAGES:
        reason = f"only {n} validation images (a fit needs at least {MIN_IMAGES})"
    elif len(np.unique(truth)) < 2:
        reason = "the validation split holds one class only"
    if reason is None:
        temperature = fit_temperature(logits, truth)
        after_nll = nll_of_logits(logits, truth, temperature)
        if after_nll >= measured["nll_before"]:
            reason, temperature = "no temperature lowers the validation NLL", 1.0
    if reason is not None:
        return Calibration(
            "none",
            1.0,
            n,
            measured.get("ece_before"),
            measured.get("ece_before"),
            measured.get("nll_before"),
            measured.get("nll_before"),
            fitted_on=fitted_on,
            reason=reason,
        )
    after = softmax(logits / temperature)
    return Calibration(
        "temperature",
        temperature,
        n,
        measured["ece_before"],
        ece(after, truth),
        measured["nll_before"],
        after_nll,
        fitted_on=fitted_on,
    )
