"""The runs already in a runs folder, and what each left behind: for the Train tab's list.

The app may not import training (pyproject's import contracts), so it reads run folders
through their names in convnet_common.run_layout and nothing else. Every file here was
written by another process, possibly one killed half-way, an older version, or a
stranger: each reader turns a missing, oversized or malformed file into "unknown" (None
or an empty list) rather than an exception, so one bad folder never hides the others.

A run's status comes from what is on disk:
  finished   result.json is there (written once, after the last epoch)
  resumable  checkpoints/state.json names a checkpoint and is not marked finished
  running    a live process holds RUN_DIR/.lock (training.run_lock writes its pid there)
  failed     a run folder (config.yaml or state.json) with neither of the above
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convnet_common.run_layout import RunFolder
from convnet_common.safe_json import JsonInputError, read_json

# result.json and state.json are a few kB; metrics.json grows with the classes (a few
# hundred bytes each). Anything far larger was not written by convnet-train.
MAX_RESULT_BYTES = 4_000_000
MAX_STATE_BYTES = 1_000_000
MAX_METRICS_BYTES = 32_000_000
MAX_HISTORY_BYTES = 16_000_000
MAX_HISTORY_ROWS = 100_000
SETTINGS_FILE = RunFolder.TRAIN_SETTINGS  # written by desktop.core.train_settings
LOCK_FILE = ".lock"  # training.run_lock.LOCK_NAME

FINISHED, RESUMABLE, RUNNING, FAILED = "finished", "resumable", "running", "failed"


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a run, from history.csv or a live `epoch` event; None where unknown."""

    epoch: int
    stage: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    seconds: float | None = None

    MEASURES = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")

    @classmethod
    def from_fields(
        cls, epoch: int, stage: int | None, fields: Mapping[str, Any], number: Callable[[Any], float | None]
    ) -> EpochRecord:
        """The record for `epoch`, each measure read from `fields` by `number` (text for a
        history.csv row, JSON numbers for a live event): one list of fields for both."""
        return cls(epoch, stage, *(number(fields.get(name)) for name in cls.MEASURES))


@dataclass(frozen=True)
class RunSummary:
    """One row of the run list. `detail` says why a run is failed or what it can still do."""

    path: Path
    status: str
    date: dt.datetime | None
    backbone: str | None
    dataset: str | None
    data_dir: str | None
    best_val_accuracy: float | None
    best_epoch: int | None
    epochs: int | None
    detail: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def finite(value: Any) -> float | None:
    """A float for a finite number (bools excluded), else None: files may hold NaN or text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def whole(value: Any) -> int | None:
    """An int for an integer value (bools excluded), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _read_object(path: Path, max_bytes: int, what: str) -> dict | None:
    try:
        data = read_json(path, max_bytes, what)
    except (OSError, JsonInputError):
        return None
    return data if isinstance(data, dict) else None


def read_result(run_dir: str | os.PathLike[str]) -> dict | None:
    """result.json as a dict, or None when it is missing or unreadable."""
    return _read_object(RunFolder(run_dir).result, MAX_RESULT_BYTES, "result.json")


# The chance sentence convnet-train writes is a few hundred characters; more is cut.
MAX_CHANCE_TEXT = 600


def chance_warning(run_dir: str | os.PathLike[str] | None) -> str | None:
    """Why a finished run's best accuracy is no result, or None when it beat chance.

    convnet-train writes its chance verdict into result.json ("chance": beats_chance
    true/false/null and a sentence). A run that did no better than guessing, or whose
    validation set was too small to tell, must not be shown like any other result (a
    random-weight MobileNetV2 once sat at 33.3% on three classes and looked finished).
    Runs from before the verdict existed, and unreadable files, give None.
    """
    result = read_result(run_dir) if run_dir else None
    verdict = result.get("chance") if result else None
    if not isinstance(verdict, dict) or verdict.get("beats_chance") is True:
        return None
    sentence = verdict.get("sentence")
    if not isinstance(sentence, str) or not sentence.strip():
        return None
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= MAX_CHANCE_TEXT else sentence[: MAX_CHANCE_TEXT - 1] + "…"


def read_metrics(run_dir: str | os.PathLike[str]) -> dict | None:
    """report/metrics.json (accuracy, per_class, …) as a dict, or None."""
    return _read_object(RunFolder(run_dir).report / "metrics.json", MAX_METRICS_BYTES, "metrics.json")


def report_files(run_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """The report's files that exist, by name (confusion_matrix.png, misclassified.png, …)."""
    names = ("metrics.json", "predictions.csv", "confusion_matrix.png", "misclassified.png")
    report = RunFolder(run_dir).report
    return {name: report / name for name in names if (report / name).is_file()}


def read_resume_state(run_dir: str | os.PathLike[str]) -> dict | None:
    """checkpoints/state.json as a dict, or None."""
    return _read_object(RunFolder(run_dir).state, MAX_STATE_BYTES, "state.json")


def has_resume_point(run_dir: str | os.PathLike[str] | None) -> bool:
    """Whether `convnet-train train --resume RUN_DIR` has something to continue: a saved
    checkpoint in a run not marked finished (the trainer refuses the others)."""
    if not run_dir:
        return False
    state = read_resume_state(run_dir)
    return bool(
        state and isinstance(state.get("checkpoint"), str) and state["checkpoint"] and not state.get("finished")
    )


def lock_holder_alive(run_dir: str | os.PathLike[str]) -> bool:
    """Whether RUN_DIR/.lock names a live process. The lock is released (and the file
    removed) when convnet-train returns; a file left by a killed run names a dead pid.
    Only the pid is read: taking the lock to test it could make a starting run fail."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_text(encoding="ascii", errors="replace")[:32].strip()
    except OSError:
        return False
    if not text.isdigit() or int(text) <= 0:
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists, owned by someone else (or the platform cannot tell): assume alive
    return True


def read_history(run_dir: str | os.PathLike[str]) -> list[EpochRecord]:
    """history.csv as epoch records in file order; rows without an epoch number are skipped."""
    path = RunFolder(run_dir).history
    try:
        if path.stat().st_size > MAX_HISTORY_BYTES:
            return []
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            rows = []
            for index, row in enumerate(csv.DictReader(handle)):
                if index >= MAX_HISTORY_ROWS:
                    break
                record = _history_record(row)
                if record is not None:
                    rows.append(record)
            return rows
    except (OSError, csv.Error):
        return []


def _number(text: Any) -> float | None:
    try:
        return finite(float(text))
    except (TypeError, ValueError):
        return None


def _history_record(row: dict) -> EpochRecord | None:
    epoch = _number(row.get("epoch"))
    if epoch is None or not epoch.is_integer():
        return None
    stage = _number(row.get("stage"))
    stage_number = int(stage) if stage is not None and stage.is_integer() else None
    return EpochRecord.from_fields(int(epoch), stage_number, row, _number)


def _is_run_folder(path: Path) -> bool:
    folder = RunFolder(path)
    return folder.result.is_file() or folder.state.is_file() or folder.config.is_file()


def _mtime(path: Path) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime)
    except (OSError, OverflowError, ValueError):
        return None


def _parse_date(value: Any) -> dt.datetime | None:
    """finished_at as local naive time (ISO text or a unix time), comparable with mtimes."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError, OverflowError, OSError):
            date = dt.datetime.fromisoformat(value[:64])
            return date.astimezone().replace(tzinfo=None) if date.tzinfo else date
    if number := finite(value):
        with contextlib.suppress(OSError, OverflowError, ValueError):
            return dt.datetime.fromtimestamp(number)
    return None


def _text(value: Any) -> str | None:
    return value[:500] if isinstance(value, str) else None


def summarize_run(path: str | os.PathLike[str]) -> RunSummary:
    """What one run folder says about itself (see the module docstring for the status)."""
    path = Path(path)
    folder = RunFolder(path)
    result = read_result(path)
    settings = _read_object(path / SETTINGS_FILE, MAX_RESULT_BYTES, SETTINGS_FILE) or {}
    state = read_resume_state(path)
    if result is not None:
        status, detail = FINISHED, ""
        date = _parse_date(result.get("finished_at")) or _mtime(folder.result)
    elif lock_holder_alive(path):
        status, detail, date = RUNNING, "training now", _mtime(path)
    elif has_resume_point(path):
        status, detail, date = RESUMABLE, "interrupted; can be resumed", _mtime(folder.state)
    else:
        status, date = FAILED, _mtime(folder.config) or _mtime(path)
        if folder.result.is_file():
            detail = "result.json is unreadable"
        elif folder.state.is_file() and state is None:
            detail = "the resume point (state.json) is unreadable"
        elif state is not None and state.get("finished"):
            detail = "finished, but result.json is missing"
        else:
            detail = "stopped before the first epoch was saved"
    history = [] if result is not None else read_history(path)
    best = max((r.val_accuracy for r in history if r.val_accuracy is not None), default=None)
    best_epoch = next((r.epoch for r in history if best is not None and r.val_accuracy == best), None)
    source = result or {}
    return RunSummary(
        path=path,
        status=status,
        date=date,
        backbone=_text(source.get("backbone")) or _text(settings.get("backbone")),
        dataset=_text(source.get("dataset")),
        data_dir=_text(source.get("data_dir")) or _text(settings.get("data_dir")),
        best_val_accuracy=finite(source.get("best_val_accuracy")) if result is not None else best,
        best_epoch=whole(source.get("best_epoch")) if result is not None else best_epoch,
        epochs=whole(source.get("epochs")) if result is not None else (max((r.epoch for r in history), default=None)),
        detail=detail,
    )


def _same_folder(a: str, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def list_runs(
    runs_root: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None, limit: int = 1000
) -> list[RunSummary]:
    """The run folders directly under `runs_root`, newest first.

    With `data_dir`, runs that record another dataset folder are left out; runs that
    record none (older ones) stay, since they cannot be told apart. Only `limit` folders
    are looked at, so a huge unrelated folder picked by mistake stays quick.
    """
    try:
        entries = sorted(os.scandir(runs_root), key=lambda entry: entry.name)[: max(0, limit)]
    except OSError:
        return []
    runs = []
    for entry in entries:
        with contextlib.suppress(OSError):
            if not entry.is_dir() or not _is_run_folder(Path(entry.path)):
                continue
            run = summarize_run(entry.path)
            if data_dir is not None and run.data_dir and not _same_folder(run.data_dir, data_dir):
                continue
            runs.append(run)
    oldest = dt.datetime.min
    return sorted(runs, key=lambda run: (run.date or oldest, run.name), reverse=True)
