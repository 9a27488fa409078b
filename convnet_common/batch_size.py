"""How many images a folder run gives the model at once, found by timing it on this machine.

Kept apart from model loading: it is a tuning measurement, with its own fake-clock tests
(tests/desktop/core/test_throughput.py), not a check of the file. In convnet_common
because the guarded first run (model_probe_child.py) runs the sizes it picks.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

MAX_MEASURED_BATCH = 64
BATCH_MEASURE_BUDGET_S = 0.05


def measure_batch_size(run: Any, input_size: tuple[int, int], clock: Any = time.perf_counter) -> int:
    """The batch size after which doubling stops paying (see LoadedModel.throughput_batch_size)."""

    def seconds_per_image(size: int) -> float:
        batch = np.zeros((size, *input_size, 3), np.uint8)
        best = float("inf")
        for _ in range(2):  # best of two: the first run of a new shape pays for allocation
            started = clock()
            run(batch)
            best = min(best, clock() - started)
        return best / size

    size, per_image = 1, seconds_per_image(1)
    while size < MAX_MEASURED_BATCH and per_image * size * 2 < BATCH_MEASURE_BUDGET_S:
        candidate = seconds_per_image(size * 2)
        if candidate > per_image * 0.9:
            break
        size, per_image = size * 2, candidate
    return size
