"""Check a run's resume point (checkpoints/state.json) before anything is built or trained.

`--resume` used to trust state.json: a damaged field (`"best": "abc"`, `"callbacks": [1, 2]`,
`"stage_end": "x"`, a checkpoint file that is gone) surfaced as a traceback, or as
"Unknown format code 'f' for object of type 'str'" after a whole epoch had trained and
overwritten the resume point. Every field is checked here against its type, its range and
the run's configuration, and every problem is named in one error, while the run folder is
still exactly as it was.
"""

from __future__ import annotations

import math
from pathlib import Path

from convnet_common.run_layout import RunFolder
from training.callbacks import ResumeState

# The counters each stateful callback saves (training.callbacks._CALLBACK_STATE).
KNOWN_CALLBACKS = {
    "early_stopping": ("wait", "best", "best_epoch", "stopped_epoch"),
    "reduce_lr": ("wait", "best", "cooldown_counter"),
}


class ResumeStateError(ValueError):
    """The resume point cannot be continued from; the message names each bad field."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and not (isinstance(value, float) and math.isnan(value))


def _file_inside(path: Path, folder: Path) -> bool:
    try:
        return path.is_file() and path.resolve().parent == folder.resolve()
    except OSError:
        return False


def _callback_problems(callbacks) -> list[str]:
    if not isinstance(callbacks, dict):
        return [f"callbacks: {type(callbacks).__name__}, expected an object of callback counters"]
    problems = []
    for name, counters in callbacks.items():
        if name not in KNOWN_CALLBACKS:
            problems.append(f"callbacks.{name}: not a known callback ({', '.join(KNOWN_CALLBACKS)})")
        elif not isinstance(counters, dict):
            problems.append(f"callbacks.{name}: {type(counters).__name__}, expected an object of counters")
        else:
            for key, value in counters.items():
                if key not in KNOWN_CALLBACKS[name]:
                    problems.append(f"callbacks.{name}.{key}: not a counter of {name}")
                elif not _is_number(value):
                    problems.append(f"callbacks.{name}.{key}: {value!r} is not a number")
    return problems


def check_resume_state(run_dir: str | Path, state: ResumeState, epochs: int, fine_tune_epochs: int | None) -> None:
    """Raise ResumeStateError naming every field of `state` that this run cannot resume from.

    `epochs` and `fine_tune_epochs` come from the run's config.yaml (resolved when the run
    started, so fine_tune_epochs is 0 for a one-stage run). A stage one past the last is
    allowed: the trainer saves it between finishing the last stage and marking the run finished.
    """
    folder = RunFolder(run_dir)
    problems: list[str] = []
    fine_tune = fine_tune_epochs if _is_int(fine_tune_epochs) and fine_tune_epochs > 0 else 0
    total = epochs + fine_tune if _is_int(epochs) else None
    last_stage = 2 if fine_tune else 1

    if not _is_int(state.stage) or not 1 <= state.stage <= last_stage + 1:
        problems.append(f"stage: {state.stage!r}, expected {' or '.join(map(str, range(1, last_stage + 1)))}")
    if not _is_int(state.next_epoch) or state.next_epoch < 0:
        problems.append(f"next_epoch: {state.next_epoch!r} is not a count of epochs")
    elif total is not None and state.next_epoch > total:
        problems.append(f"next_epoch: {state.next_epoch} is past the run's {total} epochs")
    if state.stage_end is not None:
        if not _is_int(state.stage_end):
            problems.append(f"stage_end: {state.stage_end!r} is not an epoch number")
        elif total is not None and not 0 < state.stage_end <= total:
            problems.append(f"stage_end: {state.stage_end} is outside the run's {total} epochs")
        elif _is_int(state.next_epoch) and state.stage_end < state.next_epoch:
            problems.append(f"stage_end: {state.stage_end} comes before next_epoch {state.next_epoch}")
    if state.best is None:
        state.best = -math.inf  # nothing saved yet, as a fresh run starts
    elif not _is_number(state.best) or state.best == math.inf:
        problems.append(f"best: {state.best!r}, expected a validation accuracy (a number) or null")
    if not _is_int(state.best_epoch) or state.best_epoch < -1:
        problems.append(f"best_epoch: {state.best_epoch!r} is not an epoch number")
    elif _is_int(state.next_epoch) and state.best_epoch > state.next_epoch:
        problems.append(f"best_epoch: {state.best_epoch} is after next_epoch {state.next_epoch}")
    if (
        state.optimizer_stage is not None
        and state.optimizer_stage not in (1, 2)
        or isinstance(state.optimizer_stage, bool)
    ):
        problems.append(f"optimizer_stage: {state.optimizer_stage!r}, expected 1, 2 or null")
    if not isinstance(state.finished, bool):
        problems.append(f"finished: {state.finished!r}, expected true or false")
    problems.extend(_callback_problems(state.callbacks))
    if not isinstance(state.checkpoint, str) or not state.checkpoint or Path(state.checkpoint).name != state.checkpoint:
        problems.append(f"checkpoint: {state.checkpoint!r} is not a file name inside {RunFolder.CHECKPOINTS}/")
    else:
        weights = folder.epoch_weights(state.checkpoint)
        if not _file_inside(weights, folder.checkpoints):  # a run saved by an earlier version
            legacy = folder.legacy_epoch_weights(state.checkpoint)
            weights = legacy if _file_inside(legacy, folder.checkpoints) else weights
        for path in (weights, folder.epoch_optimizer(state.checkpoint)):
            if not _file_inside(path, folder.checkpoints):
                problems.append(f"checkpoint: {path.name} is missing from {RunFolder.CHECKPOINTS}/")
    if problems:
        raise ResumeStateError(f"{folder.state}: " + "; ".join(problems))
