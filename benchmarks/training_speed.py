"""Section 4: frozen-base training epochs, cached features vs plain `fit`.

Runs `benchmarks/bench_feature_cache.py` (as `python -m benchmarks.bench_feature_cache`)
in its own process: it imports TensorFlow, which must stay out of the suite's process.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import run_json_worker
from benchmarks.report import Row, at_least, ratio, seconds

TITLE = "Training: feature cache"
METHOD = """\
`benchmarks/bench_feature_cache.py`, in its own process: MobileNetV2 (random weights; the
cost does not depend on the values), 4 classes of generated 320×240 JPEGs, batch 32,
images decoded and cached in memory before either side is timed. Both sides train the
same classifier's head: once with `fit` through the frozen base, once on features the
base computed once. The one-off extraction is reported separately, since it is paid once
per run rather than once per epoch."""
SPEEDUP_TARGET = 5.0


def measure(images: int, size: int, epochs: int) -> dict[str, Any]:
    return run_json_worker(
        ["-m", "benchmarks.bench_feature_cache", "--images", str(images), "--size", str(size), "--epochs", str(epochs)],
        timeout=3600,
    )


def rows(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    table = [
        Row("plain `fit` through the frozen base, per epoch", seconds(result["plain_fit_s_per_epoch"])),
        Row("head on cached features, per epoch", seconds(result["cached_s_per_epoch"])),
        Row("one-off feature extraction", seconds(result["feature_extraction_s_once"])),
        at_least(
            "epoch speed-up",
            result["epoch_speedup"],
            ratio(result["epoch_speedup"]),
            SPEEDUP_TARGET,
            ratio(SPEEDUP_TARGET),
        ),
        Row(
            "speed-up over 10 epochs, extraction included", ratio(result["speedup_over_10_epochs_including_extraction"])
        ),
    ]
    notes = [
        f"{result['images']} images at {result['image_size']}×{result['image_size']}, "
        f"{result['epochs_timed']} timed epoch(s) per side."
    ]
    return table, notes
