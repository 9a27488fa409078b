"""The training configuration: every knob of a run, resolved and saved as YAML.

A run folder's config.yaml reproduces the run (`--config RUN_DIR/config.yaml`, same
seed), and `--resume` reads it back to continue an interrupted run.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from convnet_common.atomic import write_text_atomic
from training.networks import NETWORKS

OPTIMIZERS = ("adam", "sgd", "rmsprop")
MIXED_PRECISION_MODES = ("auto", "on", "off")  # training.mixed_precision.MODES
CLASS_WEIGHT_MODES = ("auto", "on", "off")
# A run's config.yaml is about 1 KB; an augmentation file less. Anything this large is not one.
MAX_CONFIG_BYTES = 1_000_000


def load_yaml_limited(path: str | os.PathLike[str], max_bytes: int = MAX_CONFIG_BYTES, what: str = "") -> Any:
    """Read a small YAML file with yaml.safe_load; ValueError with one line for every problem.

    safe_load builds only plain data (no Python objects, nothing executed). The size is
    checked before reading, and aliases (`*name`) are refused before building anything:
    a few lines of nested aliases expand to billions of items once the data is walked,
    and configuration files never need them.
    """
    what = what or str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise ValueError(
                    f"{what} is {size:,} bytes, above the {max_bytes:,}-byte limit for a configuration file"
                )
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ValueError(f"{what} cannot be read ({error.strerror or error})") from None
    if len(data) > max_bytes:
        raise ValueError(f"{what} is above the {max_bytes:,}-byte limit for a configuration file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{what} is not UTF-8 text (bad byte at offset {error.start})") from None
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ValueError(f"{what} uses a YAML alias (*{event.anchor}); write the values out instead")
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"{what} is not valid YAML ({problem}{where})") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to read") from None


def _type_error(name: str, annotation: str, value: Any) -> str | None:
    """Why `value` does not fit the field annotation (as written in this module), or None."""
    optional = annotation.endswith("| None")
    base = annotation.removesuffix("| None").strip()
    if value is None:
        return None if optional else f"'{name}' must be {base}, not empty"
    kinds: dict[str, tuple[type, ...]] = {
        "int": (int,),
        "float": (int, float),
        "str": (str,),
        "bool": (bool,),
        "dict": (dict,),
    }
    wanted = kinds.get(base)
    if wanted is None:
        return None
    if isinstance(value, bool) and base != "bool" or not isinstance(value, wanted):
        return f"'{name}' must be {'a number' if base == 'float' else base}, got {type(value).__name__} {value!r:.40}"
    return None


@dataclass
class TrainConfig:
    data_dir: str
    out: str
    backbone: str = "mobilenet_v2"
    # "imagenet", "none" or a .weights.h5 path. None (not given) becomes the backbone's own
    # default: ImageNet for keras.applications networks, none for those built from scratch,
    # which have no ImageNet weights to offer (see __post_init__).
    weights: str | None = None
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
    # float16 arithmetic with float32 weights: auto = on a GPU with tensor cores (training.mixed_precision).
    mixed_precision: str = "auto"
    distribute: bool = True
    # Several machines (training.cluster, docs/distributed-training.md): the workers'
    # HOST:PORT list and this one's place in it; None: TF_CONFIG, or one machine.
    cluster: str | None = None
    task_index: int | None = None
    # Seconds a worker waits for every other worker (at the start, and after one was lost)
    # before the job ends with a message; 0 waits forever (training.cluster).
    cluster_timeout: float = 600.0
    # With several replicas the global batch is batch_size x replicas and the learning
    # rates are multiplied by the replica count (linear scaling); False keeps them as given.
    scale_learning_rate: bool = True
    tensorboard: bool = True
    # Bit-for-bit repeatable runs (TensorFlow op determinism; random augmentation then runs
    # sequentially in the input pipeline, which is slower).
    deterministic: bool = False
    normalize_polarity: bool = False
    dataset_name: str | None = None
    augmentation: dict = field(default_factory=dict)  # the resolved AugmentSpec, filled in by train()

    def __post_init__(self) -> None:
        if self.weights is None and self.backbone in NETWORKS:  # an unknown name is reported later
            self.weights = NETWORKS[self.backbone].default_weights

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.class_weights not in CLASS_WEIGHT_MODES:
            raise ValueError(f"class weights must be one of {', '.join(CLASS_WEIGHT_MODES)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("label smoothing must be in [0, 1)")
        if self.epochs < 0 or (self.fine_tune_epochs or 0) < 0:
            raise ValueError("epochs must not be negative")
        if not 0 <= float(self.cluster_timeout) < float("inf"):
            raise ValueError(
                f"--cluster-timeout must be 0 (wait forever) or a number of seconds, got {self.cluster_timeout}"
            )
        if self.mixed_precision not in MIXED_PRECISION_MODES:
            raise ValueError(
                f"--mixed-precision takes one of {', '.join(MIXED_PRECISION_MODES)}, not {self.mixed_precision!r}"
            )
        parse_unfreeze(self.unfreeze)

    def to_yaml(self) -> str:
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, self.to_yaml())

    @classmethod
    def from_mapping(cls, values: dict) -> TrainConfig:
        """A config from plain data, checking keys and value types (a typo must not train for hours)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = {str(key) for key in values} - set(fields)
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        missing = [
            name
            for name, f in fields.items()
            if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"missing configuration key(s): {', '.join(missing)}")
        values = dict(values)
        if isinstance(values.get("unfreeze"), (int, float)) and not isinstance(values["unfreeze"], bool):
            values["unfreeze"] = str(values["unfreeze"])  # `unfreeze: 30` written by hand means "30"
        for name, value in values.items():
            problem = _type_error(name, str(fields[name].type), value)
            if problem:
                raise ValueError(problem)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a config.yaml (size-limited, yaml.safe_load); ValueError naming the file on any problem."""
        values = load_yaml_limited(path) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of configuration keys")
        try:
            return cls.from_mapping(values)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


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
