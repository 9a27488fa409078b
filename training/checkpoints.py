"""What a run saves while it trains, and how cheaply: plain arrays every epoch, the
`.keras` file only when a stage ends or the run is stopped.

Why: Keras writes `.weights.h5` and `.keras` files by walking the model's object tree in
Python. For MobileNetV2 that takes 0.8-1.2 s (`save_weights`) and 0.9-1.5 s (`save`) on
two cores, while the same 262 arrays as one `.npz` take about 0.12 s (an improving epoch:
1.9 s of saving before, 0.4 s now; `python -m benchmarks.bench_checkpoints`). Saving both after every epoch made a
convnet-train epoch slower than a hand-written Keras loop that saves nothing. So:

- the resume point holds the training graph's weights as an `.npz` of its variables in
  the model's own order (the order is fixed by the code that builds the model, the same
  in the run that resumes; shapes are checked on restore);
- the best epoch's classifier weights are kept in memory and in `checkpoints/best.weights.npz`
  (so a killed run keeps them), and `best.keras`, the file `export` and `evaluate` read,
  is written from them when a stage ends, when the run is stopped, and at the end.

Nothing is pickled: np.load runs with allow_pickle=False.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import keras
import numpy as np

from convnet_common.atomic import atomic_path, write_bytes_atomic
from convnet_common.run_layout import RunFolder


def variable_arrays(variables: list) -> list[np.ndarray]:
    """Copies of the variables' current values (they keep changing as training goes on)."""
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def save_arrays(arrays: list[np.ndarray], path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    write_bytes_atomic(path, buffer.getvalue())


def load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def assign_arrays(variables: list, arrays: list[np.ndarray], source: Path | str) -> None:
    """Put `arrays` into `variables`, refusing a file that does not fit this model."""
    if len(arrays) != len(variables):
        raise ValueError(f"{source} does not match this model ({len(arrays)} arrays for {len(variables)} variables)")
    for variable, value in zip(variables, arrays):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(
                f"{source} does not match this model ({variable.path}: {tuple(value.shape)} "
                f"saved, {tuple(variable.shape)} expected)"
            )
    for variable, value in zip(variables, arrays):
        variable.assign(value)


def save_weights(model: keras.Model, path: Path) -> None:
    save_arrays(variable_arrays(model.weights), path)


def restore_weights(model: keras.Model, folder: RunFolder, stem: str) -> None:
    """The resume point's weights: the `.npz` this version writes, or the `.weights.h5`
    an earlier version wrote (a run started before an upgrade still resumes)."""
    path = folder.epoch_weights(stem)
    if not path.is_file() and folder.legacy_epoch_weights(stem).is_file():
        model.load_weights(folder.legacy_epoch_weights(stem))
        return
    assign_arrays(model.weights, load_arrays(path), path)


def save_optimizer(optimizer: keras.optimizers.Optimizer, path: Path) -> None:
    """Optimizer slots, step count and learning rate as plain arrays (no pickle)."""
    save_arrays(variable_arrays(optimizer.variables), path)


def restore_optimizer(optimizer: keras.optimizers.Optimizer, variables: list, path: Path) -> None:
    optimizer.build(variables)
    assign_arrays(optimizer.variables, load_arrays(path), path)


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the classifier's weights of the best epoch by `monitor`, and write them as
    `best.keras` (through a temp file and a rename) when `write()` is called.

    `model_to_save` is the classifier whatever graph is being fitted (the training graph
    with auxiliary outputs, or the head on cached features shares its layers).
    """

    def __init__(self, path: Path, model_to_save: keras.Model, monitor: str, best: float = -math.inf):
        super().__init__()
        self.path, self.model_to_save, self.monitor = path, model_to_save, monitor
        self.snapshot_path = RunFolder(path.parent).best_weights
        self.best = best
        self.best_epoch = -1
        self.best_arrays: list[np.ndarray] | None = None
        self.unwritten = False  # the best weights are newer than best.keras

    def resume(self, best: float, best_epoch: int) -> None:
        """Continue a run: its best so far, and the weights of it if the run kept them."""
        self.best, self.best_epoch = best, best_epoch
        if self.snapshot_path.is_file():
            self.best_arrays = load_arrays(self.snapshot_path)
            self.unwritten = True  # a kill may have come before best.keras was written

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or value <= self.best:
            return
        self.best, self.best_epoch = float(value), epoch + 1
        self.best_arrays = variable_arrays(self.model_to_save.weights)
        self.snapshot_path.parent.mkdir(parents=True, exist_ok=True)
        save_arrays(self.best_arrays, self.snapshot_path)
        self.unwritten = True

    def best_model(self) -> keras.Model | None:
        """The classifier holding the best weights (for scoring once training is over), or
        None when they are not in memory (a resumed run that has not improved since)."""
        if self.best_arrays is None:
            return None
        assign_arrays(self.model_to_save.weights, self.best_arrays, self.snapshot_path)
        return self.model_to_save

    def write(self) -> None:
        """best.keras from the best weights; the model keeps its current weights."""
        if not self.unwritten or self.best_arrays is None:
            return
        weights = self.model_to_save.weights
        current = variable_arrays(weights)
        assign_arrays(weights, self.best_arrays, self.snapshot_path)
        try:
            with atomic_path(self.path) as tmp:  # keeps the .keras suffix Keras insists on
                self.model_to_save.save(tmp)
        finally:
            assign_arrays(weights, current, "the current weights")
        self.unwritten = False
