"""`convnet-train train --resume RUN_DIR`: continue an interrupted run where it stopped.

Kept apart from training.trainer because everything here happens before a Trainer
exists: the run folder is locked before state.json is read, the resume point is checked
field by field (training.resume_check) while the folder is still exactly as it was, and
only then are the partial files of the process that died removed. The Trainer itself
takes a ResumeState and continues at its epoch, stage and learning rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

from convnet_common.atomic import remove_stale_temp_files
from convnet_common.run_layout import RunFolder
from training.callbacks import ResumeState
from training.config import TrainConfig
from training.progress import Progress
from training.resume_check import check_resume_state
from training.run_lock import RunLock
from training.trainer import Trainer, TrainResult


class NothingToResumeError(RuntimeError):
    """No resume point, or the run already finished: the caller named the wrong folder
    (convnet-train says so in one line, exit 2)."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resume(
    run_dir: str | Path, callbacks: list | None = None, progress: Progress | None = None, plan=None
) -> TrainResult:
    """Continue an interrupted run at the epoch, stage and learning rate where it stopped.
    `plan`: a cluster's training.cluster.TrainingPlan (training.distributed); None: local."""
    run_dir = Path(run_dir)
    with RunLock(run_dir, create=False):  # before state.json is read: nobody else is writing it
        return _resume(run_dir, callbacks, progress, plan)


def _resume(run_dir: Path, callbacks: list | None, progress: Progress | None, plan) -> TrainResult:
    state = ResumeState.load(run_dir)
    if state is None or not state.checkpoint:
        raise NothingToResumeError(f"{run_dir} has no resume point (no completed epoch was saved)")
    if state.finished:
        raise NothingToResumeError(f"the run in {run_dir} already finished")
    folder = RunFolder(run_dir)
    config = TrainConfig.load(folder.config)
    config.out = str(run_dir)
    # Every field checked before anything is built, trained or removed (training.resume_check).
    check_resume_state(run_dir, state, config.epochs, config.fine_tune_epochs)
    for where in (folder.path, folder.checkpoints):  # temporary files of the process that died
        for path in remove_stale_temp_files(where):
            _log(f"removed {path.name}, a partial file the interrupted run left")
    _log(f"resuming {run_dir} at epoch {state.next_epoch + 1} (stage {state.stage})")
    return Trainer(config, resume=state, callbacks=callbacks, progress=progress, plan=plan).run()
