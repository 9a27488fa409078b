#!/usr/bin/env python3
"""Frozen-base epochs: training the head on cached features vs plain `fit` through the base.

Both sides train the same classifier (MobileNetV2, random weights: the cost does not
depend on the values) on the same generated images, in one process, one after the
other. Reports seconds per epoch and the ratio; the one-off feature extraction is
reported separately, since it is paid once per run rather than once per epoch.

    .venv/bin/python benchmarks/bench_feature_cache.py [--images 512] [--size 160] [--epochs 3]

The benchmark suite (`python -m benchmarks`) runs it in a subprocess as
`python -m benchmarks.bench_feature_cache` and reads the JSON on its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convnet_common.atomic import write_text_atomic


def make_images(root: Path, count: int, classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class{index % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), image)


def measure(images: int = 512, size: int = 160, epochs: int = 3) -> dict[str, Any]:
    """Seconds per epoch both ways, the one-off extraction, and the speed-ups, as a dict."""
    import keras

    from training import data, feature_cache, registry
    from training.model_builder import build_classifier

    with tempfile.TemporaryDirectory() as tmp:
        make_images(Path(tmp), images)
        scanned = data.scan_class_folders(tmp)
        samples, classes = scanned.samples, len(scanned.class_names)
        keras.utils.set_random_seed(0)
        classifier = build_classifier(registry.get_backbone("mobilenet_v2"), classes, size, None)

        def timed_fit(model, dataset) -> float:
            model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
            model.fit(dataset.take(1), epochs=1, verbose=0)  # build and trace outside the timing
            started = time.perf_counter()
            model.fit(dataset, epochs=epochs, verbose=0)
            return (time.perf_counter() - started) / epochs

        dataset = data.make_dataset(samples, size, 32, shuffle=True, seed=0, num_classes=classes)
        list(dataset)  # fill the decode cache, so plain fit is not charged for JPEG decoding
        plain = timed_fit(classifier, dataset)

        extractor, head = feature_cache.build_extractor_and_head(classifier)
        started = time.perf_counter()
        features = feature_cache.extract(extractor, samples, size, 32)
        extraction = time.perf_counter() - started
        cached = timed_fit(head, feature_cache.cached_dataset(features, samples, classes, 32, True, 0))

    return {
        "benchmark": "frozen-base epoch: cached features vs plain fit",
        "backbone": "mobilenet_v2",
        "images": images,
        "image_size": size,
        "epochs_timed": epochs,
        "plain_fit_s_per_epoch": plain,
        "cached_s_per_epoch": cached,
        "feature_extraction_s_once": extraction,
        "epoch_speedup": plain / cached,
        "speedup_over_10_epochs_including_extraction": 10 * plain / (extraction + 10 * cached),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    result = measure(args.images, args.size, args.epochs)
    text = json.dumps(result, indent=2)
    if args.json:
        write_text_atomic(args.json, text)
    print(json.dumps(result))  # one line last, for the suite's worker protocol
    return 0


if __name__ == "__main__":
    sys.exit(main())
