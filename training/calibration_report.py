"""The evaluation report's calibration part: ECE and NLL before and after, reliability.png.

An evaluation knows the model's probabilities and, when there is one, its temperature T
(training.calibration): a run's from result.json (its checkpoint gives the plain
softmax, "before"), an exported file's from its `calibration` metadata (the file gives
the calibrated softmax, "after"). The other side is recovered exactly from log p, since
softmax(log p / T) == softmax(z / T). Without a temperature both sides are the same
numbers and the report says there was none. ECE uses 15 equal-width bins (ECE_BINS).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from training import reports
from training.calibration import ECE_BINS, ece, logits_from_probabilities, nll, reliability_bins, softmax

RELIABILITY = "reliability.png"


def tempered(probabilities: np.ndarray, factor: float) -> np.ndarray:
    """softmax(log p * factor): factor 1/T calibrates plain softmax output, T undoes it."""
    return softmax(logits_from_probabilities(probabilities) * factor)


def measure(
    probabilities: np.ndarray,
    truth: np.ndarray,
    temperature: float | None,
    calibrated: bool,
    source: str | None = None,
) -> tuple[dict, np.ndarray]:
    """(metrics.json's "calibration" section, the calibrated probabilities).

    `calibrated`: `probabilities` already are softmax(z / T) (an exported file); else they
    are the plain softmax (a run's checkpoint).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature is None or temperature == 1.0:
        before = after = probabilities
    elif calibrated:
        before, after = tempered(probabilities, temperature), probabilities
    else:
        before, after = probabilities, tempered(probabilities, 1.0 / temperature)
    section = {
        "temperature": temperature,
        "temperature_source": source or ("none: the model has no calibration" if temperature is None else None),
        "bins": ECE_BINS,
        "binning": f"{ECE_BINS} equal-width top-1 confidence bins over [0, 1]",
        "ece_before": ece(before, truth),
        "ece_after": ece(after, truth),
        "nll_before": nll(before, truth),
        "nll_after": nll(after, truth),
        "reliability_before": [asdict(b) for b in reliability_bins(before, truth)],
        "reliability_after": [asdict(b) for b in reliability_bins(after, truth)],
    }
    return section, after


def format_lines(section: dict | None) -> list[str]:
    if not section:
        return []
    temperature = section["temperature"]
    lines = [
        "",
        f"calibration (ECE over {section['bins']} equal-width confidence bins; NLL in nats):",
        f"  before:          ECE {section['ece_before']:.4f}  NLL {section['nll_before']:.4f}",
    ]
    if temperature is None:
        lines.append(f"  no temperature ({section['temperature_source']}): the probabilities as they are")
    else:
        lines.append(f"  after T={temperature:.3f}:   ECE {section['ece_after']:.4f}  NLL {section['nll_after']:.4f}")
        if section.get("temperature_source"):
            lines.append(f"  temperature {section['temperature_source']}")
    return lines


def plot_reliability(destination, section: dict) -> Path:
    """Accuracy against mean confidence per bin, before and after calibration, with the diagonal
    (perfect calibration); the bars under the curve show how many images each bin holds."""
    figure = reports.new_figure(7, 6)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    temperature = section["temperature"]
    sides = [("before", "before calibration", "tab:red")]
    if temperature is not None:
        sides.append(("after", f"after (T = {temperature:.3f})", "tab:blue"))
    else:
        sides[0] = ("before", "no calibration", "tab:red")
    for key, label, colour in sides:
        bins = [b for b in section[f"reliability_{key}"] if b["count"]]
        axes.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color=colour,
            label=f"{label}: ECE {section[f'ece_{key}']:.3f}",
        )
    counts = section["reliability_after"]
    total = max(1, sum(b["count"] for b in counts))
    width = 1.0 / section["bins"]
    axes.bar(
        [b["lower"] for b in counts],
        [0.25 * b["count"] / total for b in counts],
        width=width,
        align="edge",
        color="tab:blue",
        alpha=0.15,
        label="share of images per bin (after, ×0.25)",
    )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(f"confidence (top-1 probability, {section['bins']} equal-width bins)")
    axes.set_ylabel("accuracy in the bin")
    axes.set_title("Reliability diagram")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    return reports.save_figure(figure, destination)
