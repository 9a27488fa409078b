#!/usr/bin/env python3
"""Frozen-base epochs: training the head on cached features vs plain `fit` through the base.

Both sides train the same classifier (MobileNetV2, random weights: the cost does not
depend on the values) on the same generated images, in one process, one after the
other. Reports seconds per epoch and the ratio; the one-off feature extraction is
reported separately, since it is paid once per run rather than once per epoch.

    .venv/bin/python benchmarks/bench_feature_cache.py [--images 512] [--size 160] [--epochs 3]
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

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_images(root: Path, count: int, classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class{index % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import keras

    from training import data, feature_cache, registry
    from training.model_builder import build_classifier

    with tempfile.TemporaryDirectory() as tmp:
        make_images(Path(tmp), args.images)
        scanned = data.scan_class_folders(tmp)
        samples, classes = scanned.samples, len(scanned.class_names)
        keras.utils.set_random_seed(0)
        classifier = build_classifier(registry.get_backbone("mobilenet_v2"), classes, args.size, None)

        def timed_fit(model, dataset) -> float:
            model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
            model.fit(dataset.take(1), epochs=1, verbose=0)  # build and trace outside the timing
            started = time.perf_counter()
            model.fit(dataset, epochs=args.epochs, verbose=0)
            return (time.perf_counter() - started) / args.epochs

        images = data.make_dataset(samples, args.size, 32, shuffle=True, seed=0, num_classes=classes)
        list(images)  # fill the decode cache, so plain fit is not charged for JPEG decoding
        plain = timed_fit(classifier, images)

        extractor, head = feature_cache.build_extractor_and_head(classifier)
        started = time.perf_counter()
        features = feature_cache.extract(extractor, samples, args.size, 32)
        extraction = time.perf_counter() - started
        cached = timed_fit(head, feature_cache.cached_dataset(features, samples, classes, 32, True, 0))

    result = {
        "benchmark": "frozen-base epoch: cached features vs plain fit",
        "backbone": "mobilenet_v2",
        "images": args.images,
        "image_size": args.size,
        "epochs_timed": args.epochs,
        "plain_fit_s_per_epoch": round(plain, 3),
        "cached_s_per_epoch": round(cached, 4),
        "feature_extraction_s_once": round(extraction, 3),
        "epoch_speedup": round(plain / cached, 1),
        "speedup_over_10_epochs_including_extraction": round(10 * plain / (extraction + 10 * cached), 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
