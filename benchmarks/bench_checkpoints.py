#!/usr/bin/env python3
"""What one epoch's saving costs: Keras' own files against the arrays training.checkpoints writes.

MobileNetV2 (random weights, the cost does not depend on the values) with a 4-class head,
after one training step so that the optimizer has its slots. Each way is timed twice after a
warm-up, side by side in one process; the numbers are seconds per save.

    .venv/bin/python -m benchmarks.bench_checkpoints [--size 160]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(size: int = 160, repeats: int = 2) -> dict[str, float]:
    import keras
    import numpy as np

    from training.checkpoints import save_optimizer, save_weights

    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None)
    pixels = keras.Input((size, size, 3))
    model = keras.Model(
        pixels, keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(base(pixels)))
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.zeros((2, size, size, 3), "float32"), np.zeros(2), verbose=0)
    with tempfile.TemporaryDirectory(prefix="convnet-bench-ckpt-") as folder:
        out = Path(folder)
        ways = {
            "keras_save_keras": lambda: model.save(out / "best.keras"),
            "keras_save_weights_h5": lambda: model.save_weights(out / "epoch.weights.h5"),
            "npz_weights": lambda: save_weights(model, out / "epoch.weights.npz"),
            "npz_optimizer": lambda: save_optimizer(model.optimizer, out / "epoch.optimizer.npz"),
        }
        results = {}
        for name, save in ways.items():
            save()  # warm-up
            started = time.perf_counter()
            for _ in range(repeats):
                save()
            results[name] = (time.perf_counter() - started) / repeats
    # An improving epoch: before, best.keras + the resume point's .weights.h5 + the optimizer;
    # now, the best weights + the resume point's weights as .npz + the optimizer.
    results["keras_per_epoch_before"] = (
        results["keras_save_keras"] + results["keras_save_weights_h5"] + results["npz_optimizer"]
    )
    results["npz_per_epoch_now"] = 2 * results["npz_weights"] + results["npz_optimizer"]
    return {name: round(value, 3) for name, value in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.size), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
