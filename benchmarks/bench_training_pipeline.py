#!/usr/bin/env python3
"""Three ways to fine-tune the same network on the same folder, side by side in one process.

- **notes**: the course notes' `ImageDataGenerator(...).flow_from_directory` + `fit`.
- **keras**: a hand-written Keras script: `image_dataset_from_directory` + the augmentation
  layers in `map` + `prefetch` + `fit`.
- **convnet-train**: `training.trainer.train`, what `convnet-train train` runs (callbacks,
  checkpoints, resume point, calibration and the validation report included).

The same MobileNetV2 classifier (random weights saved once to a `.weights.h5` file: the
cost does not depend on the values, and there is no network for ImageNet's), the same
generated 640×480 JPEGs in 4 classes, 20% held out for validation, batch 32, and the
seeds' augmentation (the notes' ImageDataGenerator settings) or none. Each way trains the
head on a frozen base, then fine-tunes the top quarter of the base, `epochs` each. An
epoch's time is fit's own (training and validation); a stage's rate is its training
images over the median epoch after its first (the first traces the graph). The whole
run's wall time (build, data, both stages, and for convnet-train its records and report)
is reported beside it.

    .venv/bin/python -m benchmarks.bench_training_pipeline [--images 256] [--size 160] [--epochs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import photo_like

WAYS = ("notes", "keras", "convnet-train")
AUGMENTS = ("none", "seed")
BATCH = 32
CLASSES = 4


def make_folder(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), cv2.cvtColor(photo_like(rng, 480, 640), cv2.COLOR_RGB2BGR))


def epoch_timer():
    """A callback that records each fit's epoch durations: one list per fit (stage)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stages: list[list[float]] = []

        def on_train_begin(self, logs=None) -> None:
            self.stages.append([])

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.stages[-1].append(time.perf_counter() - self.started)

    return EpochTimer()


def base_weights_file(folder: Path, size: int) -> Path:
    import keras

    path = folder / "mobilenet_v2_random.weights.h5"
    keras.utils.set_random_seed(0)
    keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None).save_weights(path)
    return path


def classifier(size: int, weights: Path):
    from training import registry
    from training.model_builder import build_classifier

    return build_classifier(registry.get_backbone("mobilenet_v2"), CLASSES, size, str(weights), freeze_base=True)


def fit_two_stages(model, train, val, epochs: int, timer) -> None:
    """The Keras transfer-learning guide's two stages, as a hand-written script runs them."""
    import keras

    from training.model_builder import set_trainable_for_stage

    for stage, rate in ((1, 1e-3), (2, 1e-4)):
        set_trainable_for_stage(model, True, stage, "0.25")
        model.compile(keras.optimizers.Adam(rate), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
        model.fit(train, validation_data=val, epochs=epochs, callbacks=[timer], verbose=0)


def run_notes(root: Path, size: int, epochs: int, augment: str, weights: Path, timer) -> int:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    settings = dict(validation_split=0.2)
    if augment == "seed":  # the notes' settings, which the seed preset copies
        settings.update(
            rotation_range=50,
            width_shift_range=0.2,
            height_shift_range=0.2,
            shear_range=0.2,
            zoom_range=0.3,
            horizontal_flip=True,
            fill_mode="nearest",
        )
    flow = dict(target_size=(size, size), batch_size=BATCH, class_mode="categorical", seed=0)
    train = ImageDataGenerator(**settings).flow_from_directory(root, subset="training", **flow)
    val = ImageDataGenerator(validation_split=0.2).flow_from_directory(root, subset="validation", **flow)
    fit_two_stages(classifier(size, weights), train, val, epochs, timer)
    return train.samples


def run_keras(root: Path, size: int, epochs: int, augment: str, weights: Path, timer) -> int:
    import keras
    import tensorflow as tf

    from training.augment import PRESETS, build_sequential_augmentation

    train, val = keras.utils.image_dataset_from_directory(
        root,
        validation_split=0.2,
        subset="both",
        seed=0,
        image_size=(size, size),
        batch_size=BATCH,
        label_mode="categorical",
        verbose=False,
    )
    count = len(train.file_paths)
    layers = build_sequential_augmentation(PRESETS[augment], seed=0)
    if layers is not None:
        train = train.map(lambda x, y: (layers(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    train, val = train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)
    fit_two_stages(classifier(size, weights), train, val, epochs, timer)
    return count


# What convnet-train's run spends outside fit's epochs, by phase: the Trainer methods timed.
PHASES = {
    "_prepare_data": "scan and split the folder",
    "_build": "build the network",
    "_stage_inputs": "input pipelines (decoding, feature extraction)",
    "_finish": "calibration, result.json, validation report",
}


@contextlib.contextmanager
def timed_phases(owner, names, seconds: dict[str, float]):
    """Wrap `owner`'s methods so each call adds its duration to seconds[name]."""
    originals = {name: getattr(owner, name) for name in names}

    def wrap(name, method):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

        return timed

    for name, method in originals.items():
        setattr(owner, name, wrap(name, method))
    try:
        yield seconds
    finally:
        for name, method in originals.items():
            setattr(owner, name, method)


LAST_PHASES: dict[str, float] = {}


def run_convnet_train(root: Path, size: int, epochs: int, augment: str, weights: Path, timer) -> int:
    from training.config import TrainConfig
    from training.trainer import Trainer, train

    with tempfile.TemporaryDirectory(prefix="convnet-bench-run-") as out:
        config = TrainConfig(
            data_dir=str(root),
            out=str(Path(out) / "run"),
            backbone="mobilenet_v2",
            weights=str(weights),
            image_size=size,
            epochs=epochs,
            fine_tune_epochs=epochs,
            batch_size=BATCH,
            augment=augment,
            tensorboard=False,
            seed=0,
        )
        LAST_PHASES.clear()
        with contextlib.redirect_stdout(sys.stderr), timed_phases(Trainer, PHASES, LAST_PHASES):
            result = train(config, callbacks=[timer])
    return result.train_images


def stage_rates(stages: list[list[float]], images: int) -> dict[str, float]:
    rates = {}
    for name, epochs in zip(("frozen", "fine_tune"), stages, strict=False):
        steady = epochs[1:] or epochs
        rates[f"{name}_images_per_s"] = images / statistics.median(steady)
        rates[f"{name}_first_epoch_s"] = epochs[0]
    return rates


RUNNERS = {"notes": run_notes, "keras": run_keras, "convnet-train": run_convnet_train}


def _best(first: dict[str, Any] | None, second: dict[str, Any]) -> dict[str, Any]:
    """Per figure, the better of two rounds: the higher images/s, the shorter times."""
    if first is None:
        return second
    best = dict(second)
    for key, value in first.items():
        if isinstance(value, (int, float)) and key in second:
            best[key] = max(value, second[key]) if key.endswith("_per_s") else min(value, second[key])
    return best


def measure(images: int = 256, size: int = 160, epochs: int = 3, rounds: int = 2) -> dict[str, Any]:
    """Every way with and without augmentation, `rounds` times in alternating orders, each
    figure the best of its rounds (this shared machine's speed drifts by tens of percent
    within minutes); the ratios convnet-train over each other way."""
    import keras  # noqa: F401  imported here, outside every timing

    epochs = max(epochs, 2)  # one steady epoch at least, after the tracing one
    results: dict[str, dict[str, dict[str, Any]]] = {augment: {} for augment in AUGMENTS}
    with tempfile.TemporaryDirectory(prefix="convnet-bench-pipeline-") as tmp:
        root = Path(tmp) / "data"
        make_folder(root, images)
        weights = base_weights_file(Path(tmp), size)
        turn = 0
        for _ in range(max(rounds, 1)):
            for augment in AUGMENTS:
                order = WAYS if turn % 2 == 0 else tuple(reversed(WAYS))  # drift spreads over all
                turn += 1
                for way in order:
                    timer = epoch_timer()
                    started = time.perf_counter()
                    count = RUNNERS[way](root, size, epochs, augment, weights, timer)
                    wall = time.perf_counter() - started
                    measured = {"train_images": count, "run_wall_s": wall, **stage_rates(timer.stages, count)}
                    if way == "convnet-train":  # where its wall time goes, fit's epochs apart
                        phases = {name: round(LAST_PHASES.get(name, 0.0), 3) for name in PHASES}
                        phases["epochs"] = round(sum(sum(stage) for stage in timer.stages), 3)
                        phases["other"] = round(wall - sum(phases.values()), 3)
                        measured["phases_s"] = phases
                    results[augment][way] = _best(results[augment].get(way), measured)
                    print(f"{augment} {way}: {measured}", file=sys.stderr, flush=True)
    speedups = {
        augment: {
            f"over_{other}_{stage}": ways["convnet-train"][f"{stage}_images_per_s"]
            / ways[other][f"{stage}_images_per_s"]
            for other in ("notes", "keras")
            for stage in ("frozen", "fine_tune")
        }
        for augment, ways in results.items()
    }
    return {
        "benchmark": "training pipeline: notes vs hand-written Keras vs convnet-train",
        "backbone": "mobilenet_v2",
        "images": images,
        "image_size": size,
        "epochs_per_stage": epochs,
        "rounds": rounds,
        "batch_size": BATCH,
        "results": results,
        "speedups": speedups,
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="each figure is the best of this many rounds")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.images, args.size, args.epochs, args.rounds)))  # one line last: the worker protocol
    return 0


if __name__ == "__main__":
    sys.exit(main())
