"""The training configuration: every knob of a run, resolved and saved as YAML.

A run folder's config.yaml reproduces the run (`--config RUN_DIR/config.yaml`, same
seed), and `--resume` reads it back to continue an interrupted run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from convnet_common.atomic import write_text_atomic

OPTIMIZERS = ("adam", "sgd", "rmsprop")
CLASS_WEIGHT_MODES = ("auto", "on", "off")


@dataclass
class TrainConfig:
    data_dir: str
    out: str
    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    image_size: int | None = None
    # Stage 1: the new head on a frozen base (or the whole network, from scratch).
    epochs: int = 10
    learning_rate: float = 1e-3
    # Stage 2 (pretrained bases only): unfreeze the top of the base at a lower rate.
    # None resolves to 5 epochs for pretrained bases and 0 for from-scratch networks.
    fine_tune_epochs: int | None = None
    fine_tune_learning_rate: float = 1e-5
    unfreeze: str = "0.25"  # a fraction of the base's layers ("0.25") or a count ("30")
    batch_size: int = 32
    val_fraction: float = 0.2
    val_dir: str | None = None
    seed: int = 1337
    augment: str = "light"
    dropout: float = 0.2
    hidden_units: int = 0
    hidden_activation: str = "relu"
    label_smoothing: float = 0.0
    class_weights: str = "auto"  # auto: on when the largest class has > imbalance_ratio x the smallest
    imbalance_ratio: float = 1.5
    optimizer: str = "adam"
    early_stopping_patience: int = 5  # 0 turns it off
    reduce_lr_patience: int = 2  # 0 turns it off
    feature_cache: bool = True
    distribute: bool = True
    tensorboard: bool = True
    # Bit-for-bit repeatable runs (TensorFlow op determinism; random augmentation then runs
    # sequentially in the input pipeline, which is slower).
    deterministic: bool = False
    normalize_polarity: bool = False
    dataset_name: str | None = None
    augmentation: dict = field(default_factory=dict)  # the resolved AugmentSpec, filled in by train()

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.class_weights not in CLASS_WEIGHT_MODES:
            raise ValueError(f"class weights must be one of {', '.join(CLASS_WEIGHT_MODES)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("label smoothing must be in [0, 1)")
        if self.epochs < 0 or (self.fine_tune_epochs or 0) < 0:
            raise ValueError("epochs must not be negative")
        parse_unfreeze(self.unfreeze)

    def to_yaml(self) -> str:
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, self.to_yaml())

    @classmethod
    def from_mapping(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of configuration keys")
        return cls.from_mapping(values)


def parse_unfreeze(value: str | float | int) -> float | int:
    """'0.25' -> a fraction of the base's layers; '30' -> that many top layers."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"--unfreeze takes a fraction like 0.25 or a layer count like 30, got {value!r}") from None
    if "." in text or "e" in text.lower():
        if not 0.0 < number <= 1.0:
            raise ValueError(f"--unfreeze fraction must be in (0, 1], got {value!r}")
        return number
    if number < 1:
        raise ValueError(f"--unfreeze layer count must be at least 1, got {value!r}")
    return int(number)
