"""Train a classifier on a folder of class folders and leave a self-contained run folder.

RUN_DIR/
  config.yaml     the fully resolved configuration (reproduces the run with --seed)
  best.keras      best checkpoint by validation accuracy (safe_mode loadable)
  history.csv     per-epoch loss and accuracy
  split.json      which files were used for training and validation, and skipped files
  result.json     labels, counts, best validation accuracy, timings
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import yaml

from convnet_common.atomic import atomic_path, write_text_atomic
from training import data, registry
from training.augment import AugmentSpec, build_augmentation, resolve_augment
from training.model_builder import build_classifier
from training.registry import HeadOptions
from training.weights import resolve_weights

CHECKPOINT_NAME = "best.keras"


@dataclass
class TrainConfig:
    data_dir: str
    out: str
    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    image_size: int | None = None
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    val_fraction: float = 0.2
    val_dir: str | None = None
    seed: int = 1337
    augment: str = "light"
    dropout: float = 0.2
    hidden_units: int = 0
    normalize_polarity: bool = False
    dataset_name: str | None = None
    augmentation: dict = field(default_factory=dict)  # resolved AugmentSpec, filled in by train()

    def to_yaml(self) -> str:
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)


@dataclass
class TrainResult:
    run_dir: Path
    labels: list[str]
    best_val_accuracy: float
    train_images: int
    val_images: int
    skipped: list[tuple[str, str]]


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Save the model when validation accuracy improves, via a temp file and a rename,
    so an interrupted save never leaves a broken checkpoint behind."""

    def __init__(self, path: Path, monitor: str = "val_accuracy"):
        super().__init__()
        self.path, self.monitor = path, monitor
        self.best = -math.inf
        self.best_epoch = -1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or value <= self.best:
            return
        self.best, self.best_epoch = float(value), epoch + 1
        with atomic_path(self.path) as tmp:
            # Keras insists on the .keras suffix; atomic_path keeps it.
            self.model.save(tmp)


class HistoryLog(keras.callbacks.Callback):
    """history.csv rewritten atomically after every epoch, so it survives an interruption."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.rows = path, []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.rows[-1]))
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buffer.getvalue())


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_split(config: TrainConfig) -> tuple[data.ScannedFolder, list[data.Sample], list[data.Sample]]:
    scanned = data.scan_class_folders(config.data_dir)
    data.validate_for_training(scanned, config.data_dir)
    if config.val_dir:
        val_scan = data.scan_class_folders(config.val_dir, class_names=scanned.class_names)
        if not val_scan.samples:
            raise data.DatasetError(f"validation folder {config.val_dir} contains no readable images")
        scanned.skipped.extend(val_scan.skipped)
        return scanned, scanned.samples, val_scan.samples
    train, val = data.split_samples(scanned.samples, config.val_fraction, config.seed)
    if not val:
        raise data.DatasetError("too few images for a validation split; add images or pass --val-dir")
    return scanned, train, val


def train(config: TrainConfig) -> TrainResult:
    backbone = registry.get_backbone(config.backbone)
    config.image_size = config.image_size or backbone.default_image_size
    spec: AugmentSpec = resolve_augment(config.augment)
    config.augmentation = spec.to_dict()
    config.dataset_name = config.dataset_name or Path(config.data_dir).resolve().name
    weights = resolve_weights(config.weights, backbone)

    scanned, train_samples, val_samples = prepare_split(config)
    for path, reason in scanned.skipped:
        _log(f"skipped {path}: {reason}")
    _log(
        f"{len(scanned.class_names)} classes, {len(train_samples)} training and {len(val_samples)} validation "
        f"images ({len(scanned.skipped)} skipped)"
    )

    keras.utils.set_random_seed(config.seed)
    model = build_classifier(
        backbone,
        len(scanned.class_names),
        config.image_size,
        weights,
        HeadOptions(dropout=config.dropout, hidden_units=config.hidden_units),
        normalize_polarity=config.normalize_polarity,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )

    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", config.to_yaml())
    split = {
        "labels": scanned.class_names,
        "train": [[s.path, s.label] for s in train_samples],
        "val": [[s.path, s.label] for s in val_samples],
        "skipped": [[path, reason] for path, reason in scanned.skipped],
    }
    write_text_atomic(run_dir / "split.json", json.dumps(split, indent=1))

    augmentation = build_augmentation(spec, seed=config.seed)
    train_ds = data.make_dataset(
        train_samples, config.image_size, config.batch_size, shuffle=True, seed=config.seed, augmentation=augmentation
    )
    val_ds = data.make_dataset(val_samples, config.image_size, config.batch_size, shuffle=False, seed=config.seed)
    checkpoint = AtomicBestCheckpoint(run_dir / CHECKPOINT_NAME)
    started = time.perf_counter()
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        callbacks=[checkpoint, HistoryLog(run_dir / "history.csv")],
        verbose=1 if sys.stdout.isatty() else 2,
        shuffle=False,  # the tf.data pipeline already shuffles, seeded
    )
    seconds = time.perf_counter() - started
    result = TrainResult(
        run_dir=run_dir,
        labels=scanned.class_names,
        best_val_accuracy=checkpoint.best,
        train_images=len(train_samples),
        val_images=len(val_samples),
        skipped=scanned.skipped,
    )
    summary = {
        "labels": result.labels,
        "backbone": backbone.name,
        "image_size": config.image_size,
        "dataset": config.dataset_name,
        "train_images": result.train_images,
        "val_images": result.val_images,
        "skipped_images": len(result.skipped),
        "best_val_accuracy": result.best_val_accuracy,
        "best_epoch": checkpoint.best_epoch,
        "epochs": config.epochs,
        "weights": config.weights,
        "normalize_polarity": config.normalize_polarity,
        "train_seconds": round(seconds, 1),
    }
    write_text_atomic(run_dir / "result.json", json.dumps(summary, indent=2))
    _log(f"best validation accuracy {checkpoint.best:.4f} (epoch {checkpoint.best_epoch}); run saved in {run_dir}")
    return result
