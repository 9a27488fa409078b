"""Every file and folder of a training run folder, named once: `RunFolder(path)`.

The trainer writes these, and `evaluate`, `export`, `--resume` and the command line read
them back; before this module each spelled the names itself, and `export` imported the
whole trainer (and `model_source` imported it lazily, closing an import cycle) only to
learn what the best checkpoint is called. It lives in convnet_common because
the app reads run folders too (the Train tab lists runs and shows their curves and
results) and may not import training; it imports nothing heavy.

RUN_DIR/
  config.yaml     the fully resolved configuration (`--config` reads it back)
  best.keras      best classifier by validation accuracy (safe_mode loadable)
  history.csv     per-epoch stage, loss, accuracy and learning rate
  split.json      training/validation files, and skipped files with the reason
  result.json     labels, counts, best validation accuracy, stages, chance verdict, timings
  checkpoints/    the resume point: state.json and the latest epoch's weights and optimizer;
                  best.weights.npz, the best epoch's weights (best.keras is written from
                  them when a stage ends or the run stops)
  logs/           TensorBoard logs
  report/         the run's own validation report, written by training
  evaluations/    reports of `convnet-train evaluate RUN_DIR DATA_DIR`, one folder each
  train-settings.json   the Train tab's settings the run was started with (the app writes it)
"""

from __future__ import annotations

import os
from pathlib import Path


class RunFolder:
    """The paths inside one run folder; nothing is read or created here."""

    BEST_CHECKPOINT = "best.keras"
    RESULT = "result.json"
    SPLIT = "split.json"
    HISTORY = "history.csv"
    CONFIG = "config.yaml"
    CHECKPOINTS = "checkpoints"
    STATE = "state.json"  # inside checkpoints/
    LOGS = "logs"
    REPORT = "report"
    EVALUATIONS = "evaluations"
    TRAIN_SETTINGS = "train-settings.json"  # the app's Train tab settings for the run

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / self.BEST_CHECKPOINT

    @property
    def result(self) -> Path:
        return self.path / self.RESULT

    @property
    def split(self) -> Path:
        return self.path / self.SPLIT

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def state(self) -> Path:
        """The resume point's record, written last after each epoch (training.callbacks)."""
        return self.checkpoints / self.STATE

    def epoch_weights(self, stem: str) -> Path:
        """The training graph's weights saved at the epoch named `stem` (e.g. "epoch-0003"),
        as arrays in the model's variable order (training.checkpoints)."""
        return self.checkpoints / f"{stem}.weights.npz"

    def legacy_epoch_weights(self, stem: str) -> Path:
        """Where versions before the .npz resume point saved the weights (still resumable)."""
        return self.checkpoints / f"{stem}.weights.h5"

    @property
    def best_weights(self) -> Path:
        """The best epoch's classifier weights, kept until best.keras is written from them."""
        return self.checkpoints / "best.weights.npz"

    def epoch_optimizer(self, stem: str) -> Path:
        """The optimizer state saved at the epoch named `stem`."""
        return self.checkpoints / f"{stem}.optimizer.npz"

    @property
    def logs(self) -> Path:
        return self.path / self.LOGS

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    @property
    def evaluations(self) -> Path:
        return self.path / self.EVALUATIONS

    @property
    def train_settings(self) -> Path:
        return self.path / self.TRAIN_SETTINGS
