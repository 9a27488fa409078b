"""Callbacks that make a run survivable: a history that is rewritten after every epoch
and a resume point that an interrupted run continues from (the best epoch's weights are
kept by training.checkpoints.BestCheckpoint).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import keras

from convnet_common.atomic import remove_stale_temp_files, write_text_atomic
from convnet_common.run_layout import RunFolder
from convnet_common.safe_json import read_json
from training.checkpoints import BestCheckpoint, save_optimizer, save_weights


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


class HistoryLog(keras.callbacks.Callback):
    """history.csv (epoch, stage, metrics, learning rate), rewritten atomically each epoch."""

    def __init__(self, path: Path, stage: int, rows: list[dict] | None = None, rename: dict | None = None):
        super().__init__()
        self.path, self.stage = path, stage
        self.rows = rows if rows is not None else []
        self.rename = rename or {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch + 1, "stage": self.stage}
        for key, value in (logs or {}).items():
            row[self.rename.get(key, key)] = float(value)
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append(row)
        fields: list[str] = []
        for existing in self.rows:
            fields.extend(key for key in existing if key not in fields)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buffer.getvalue())


MAX_STATE_BYTES = 1_000_000  # state.json is a few hundred bytes; anything huge is not ours


@dataclass
class ResumeState:
    stage: int  # the stage the next epoch belongs to
    next_epoch: int  # zero-based global epoch index to start from
    best: float = -math.inf
    best_epoch: int = -1
    stage_end: int | None = None  # global epoch at which the current stage ends, once started
    optimizer_stage: int | None = None  # the stage whose optimizer state the checkpoint holds
    checkpoint: str | None = None  # file stem inside checkpoints/
    finished: bool = False
    # Counters of early stopping / learning-rate reduction, so a resumed stage decides as
    # the uninterrupted one would have (see callback_state).
    callbacks: dict = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: Path) -> ResumeState | None:
        path = RunFolder(run_dir).state
        if not path.is_file():
            return None
        try:
            data = read_json(path, MAX_STATE_BYTES, "the file")
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            known = {f.name for f in fields(cls)}
            state = cls(**{key: value for key, value in data.items() if key in known})
            for name in ("stage", "next_epoch"):
                if not isinstance(getattr(state, name), int) or getattr(state, name) < 0:
                    raise ValueError(f"{name} is not a count")
            if state.checkpoint is not None and Path(state.checkpoint).name != state.checkpoint:
                raise ValueError("the checkpoint name points outside checkpoints/")
            return state
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"the resume point {path} is unreadable ({error})") from None

    def save(self, run_dir: Path) -> None:
        write_text_atomic(RunFolder(run_dir).state, json.dumps(asdict(self), indent=2))


def plateau_callbacks(monitor: str, early_stopping_patience: int, reduce_lr_patience: int) -> dict:
    """Early stopping and learning-rate reduction on `monitor` (patience 0: off), under the
    names their counters are saved by in state.json (ResumePoint)."""
    stateful: dict[str, keras.callbacks.Callback] = {}
    if early_stopping_patience:
        stateful["early_stopping"] = keras.callbacks.EarlyStopping(
            monitor, patience=early_stopping_patience, mode="max"
        )
    if reduce_lr_patience:
        stateful["reduce_lr"] = keras.callbacks.ReduceLROnPlateau(
            monitor, factor=0.2, mode="max", patience=reduce_lr_patience
        )
    return stateful


# What a stock Keras callback must carry across a resume to decide as it would have.
_CALLBACK_STATE = (
    (keras.callbacks.EarlyStopping, ("wait", "best", "best_epoch", "stopped_epoch")),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "best", "cooldown_counter")),
)


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return float(keras.ops.convert_to_numpy(value))


def callback_state(callback: keras.callbacks.Callback) -> dict:
    """The counters of early stopping or reduce-on-plateau, as plain JSON values."""
    for kind, names in _CALLBACK_STATE:
        if isinstance(callback, kind):
            return {name: _plain(getattr(callback, name, None)) for name in names}
    return {}


class RestoreCallbackState(keras.callbacks.Callback):
    """Put saved counters back into stock callbacks once they have reset themselves.

    Keras callbacks reset in on_train_begin, in list order: this one comes after them.
    """

    def __init__(self, callbacks: dict[str, keras.callbacks.Callback], saved: dict[str, dict]):
        super().__init__()
        self.targets, self.saved = callbacks, saved

    def on_train_begin(self, logs: dict | None = None) -> None:
        for name, callback in self.targets.items():
            for key, value in (self.saved.get(name) or {}).items():
                setattr(callback, key, value)


def epoch_stem(number: int) -> str:
    """The name (without suffixes) of the resume point saved after 1-based epoch `number`."""
    return f"epoch-{number:04d}"


class ResumePoint(keras.callbacks.Callback):
    """After every epoch: weights and optimizer under epoch-numbered names, then state.json
    pointing at them (written last), then older files removed. A kill at any moment
    leaves state.json naming a complete checkpoint.

    It must come after every callback that changes the optimizer or its own counters at
    an epoch's end (ReduceLROnPlateau, EarlyStopping), so the resume point holds what
    they decided; `stateful` names those whose counters are saved too.
    """

    def __init__(
        self,
        run_dir: Path,
        graph_model: keras.Model,
        stage: int,
        stage_end: int,
        best_checkpoint: BestCheckpoint,
        stateful: dict[str, keras.callbacks.Callback] | None = None,
    ):
        super().__init__()
        self.run_dir, self.graph_model, self.stage = run_dir, graph_model, stage
        self.stage_end = stage_end
        self.best_checkpoint = best_checkpoint
        self.stateful = stateful or {}
        self.run_folder = RunFolder(run_dir)
        self.folder = self.run_folder.checkpoints

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = epoch_stem(epoch + 1)
        save_weights(self.graph_model, self.run_folder.epoch_weights(stem))
        save_optimizer(self.model.optimizer, self.run_folder.epoch_optimizer(stem))
        ResumeState(
            stage=self.stage,
            next_epoch=epoch + 1,
            best=self.best_checkpoint.best,
            best_epoch=self.best_checkpoint.best_epoch,
            stage_end=self.stage_end,
            optimizer_stage=self.stage,
            checkpoint=stem,
            callbacks={name: callback_state(callback) for name, callback in self.stateful.items()},
        ).save(self.run_dir)
        for old in self.folder.glob("epoch-*"):
            if not old.name.startswith(stem + "."):
                old.unlink(missing_ok=True)
        remove_stale_temp_files(self.folder)  # what a writer killed in an earlier epoch left


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer in `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batchnorm_layers(layer))
    return found


class BatchNormRecalibration(keras.callbacks.Callback):
    """Before every validation, set the moving statistics of a base that trains from
    random weights to the average batch statistics of the current weights.

    Validation and the exported model use BatchNorm's moving averages, and those lag
    the weights by about 1 / (1 - momentum) steps: 1,000 for MobileNetV2 (0.999). A
    from-scratch run on a small dataset finishes long before they catch up, so it
    validates (and would ship) a network whose inference-mode features are garbage or
    constants, at chance accuracy while its training accuracy climbs. Averaging the
    batch statistics over up to `max_batches` training batches ("precise BatchNorm", Wu
    & Johnson 2021) costs one forward pass and makes validation measure the network
    that was trained.
    """

    def __init__(self, classifier: keras.Model, base_name: str, dataset, max_batches: int = 50):
        super().__init__()
        self.dataset, self.max_batches = dataset, max_batches
        base = classifier.get_layer(base_name)
        self.layers = batchnorm_layers(base)
        self._step = None
        if not self.layers:
            return
        chain = [layer for layer in classifier.layers if not isinstance(layer, keras.layers.InputLayer)]
        pixels = keras.Input(classifier.input_shape[1:])
        x = pixels
        for layer in chain[: [layer.name for layer in chain].index(base_name)]:
            x = layer(x)  # the in-graph preprocessing
        inner = keras.Model(base.inputs, [layer.input for layer in self.layers])
        self.probe = keras.Model(pixels, inner(x))

    def recalibrate(self) -> int:
        """Returns the number of images the statistics were averaged over."""
        import tensorflow as tf

        if not self.layers:
            return 0
        if self._step is None:
            axes = lambda t: list(range(len(t.shape) - 1))  # noqa: E731 - every axis but channels

            @tf.function
            def step(images):
                outputs = self.probe(images, training=True)
                outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
                return [tf.nn.moments(tf.cast(t, tf.float32), axes(t)) for t in outputs]

            self._step = step
        sums, images = None, 0
        for batch in self.dataset.take(self.max_batches):
            pixels = batch[0]
            count = int(pixels.shape[0])
            moments = self._step(pixels)
            weighted = [(mean * count, variance * count) for mean, variance in moments]
            sums = weighted if sums is None else [(a + c, b + d) for (a, b), (c, d) in zip(sums, weighted)]
            images += count
        for layer, (mean, variance) in zip(self.layers, sums or []):
            layer.moving_mean.assign(keras.ops.cast(mean / images, layer.moving_mean.dtype))
            layer.moving_variance.assign(keras.ops.cast(variance / images, layer.moving_variance.dtype))
        return images

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.recalibrate()


class ProgressLog(keras.callbacks.Callback):
    """Batch, epoch, checkpoint and early-stop events for `--progress jsonl` (training.progress).

    It goes after ResumePoint, so an epoch's events report what was decided and saved (the
    checkpoint events name files that exist). Batch events come at most every `interval`
    seconds, plus each epoch's last batch, so small fast batches do not flood the reader.
    """

    def __init__(
        self,
        progress,
        stage: int,
        run_end: int,
        sizes: tuple[int, int],
        best_checkpoint: BestCheckpoint,
        rename: dict | None = None,
        stateful: dict[str, keras.callbacks.Callback] | None = None,
        interval: float = 0.25,
    ):
        """`run_end`: the epoch the run is planned to end at; `sizes`: (training images, batch size)."""
        super().__init__()
        self.progress, self.stage, self.run_end = progress, stage, run_end
        self.images, self.batch_size = sizes
        self.best_checkpoint, self.early_stopping = best_checkpoint, (stateful or {}).get("early_stopping")
        self.run_folder = RunFolder(best_checkpoint.path.parent)
        self.rename, self.interval = rename or {}, interval
        self.pending: tuple[int, dict, float] | None = None

    def _metric(self, logs: dict, name: str):
        for key, value in logs.items():
            if self.rename.get(key, key) == name:
                return value
        return None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = self.last_time = time.monotonic()
        self.current_epoch, self.last_batch, self.pending = epoch + 1, 0, None
        self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        number, now, batches = batch + 1, time.monotonic(), self.params.get("steps")
        self.pending = (number, dict(logs or {}), now)
        if number == batches or now - self.last_time >= self.interval:
            self._batch_event()

    def _batch_event(self) -> None:
        number, logs, now = self.pending
        done = min(number * self.batch_size, self.images)
        previous = min(self.last_batch * self.batch_size, self.images)
        seconds = now - self.last_time
        self.progress.emit(
            "batch",
            stage=self.stage,
            epoch=self.current_epoch,
            batch=number,
            batches=self.params.get("steps"),
            loss=self._metric(logs, "loss"),
            accuracy=self._metric(logs, "accuracy"),
            images_per_second=(done - previous) / seconds if seconds > 0 else None,
        )
        self.last_batch, self.last_time, self.pending = number, now, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.pending is not None:  # the last batch, when the number of batches is unknown
            self._batch_event()
        number = epoch + 1
        self.progress.emit(
            "epoch",
            stage=self.stage,
            epoch=number,
            epochs=self.run_end,
            **{name: self._metric(logs, name) for name in ("loss", "accuracy", "val_loss", "val_accuracy")},
            learning_rate=self.learning_rate,
            seconds=round(time.monotonic() - self.epoch_started, 3),
        )
        saved = [("resume", self.run_folder.epoch_weights(epoch_stem(number)), self._metric(logs, "val_accuracy"))]
        if self.best_checkpoint.best_epoch == number:
            saved.insert(0, ("best", self.best_checkpoint.snapshot_path, self.best_checkpoint.best))
        for kind, path, accuracy in saved:
            self.progress.emit("checkpoint", epoch=number, kind=kind, path=os.path.abspath(path), val_accuracy=accuracy)
        stopper = self.early_stopping
        if stopper is not None and self.model.stop_training and stopper.stopped_epoch == epoch:
            self.progress.emit(
                "early_stop", stage=self.stage, epoch=number, monitor="val_accuracy", patience=stopper.patience
            )
