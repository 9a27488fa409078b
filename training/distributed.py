"""`convnet-train train` as one worker of a job on several machines, or alone.

With `--cluster`/`--task-index` or a TF_CONFIG (training.cluster), every worker runs the
same command and the same Trainer under one MultiWorkerMirroredStrategy. The chief (task
0, or the "chief" job of a TF_CONFIG) writes the run folder and the `--progress jsonl`
events; every other worker writes a run folder of its own in a temporary folder named
after its place in the cluster (worker_folder), which it deletes once the job finished.

Fault tolerance uses the run's own resume point instead of keras.callbacks.BackupAndRestore:
after every epoch each worker saves weights, optimizer, learning rate and the plateau
counters (training.callbacks.ResumePoint), where BackupAndRestore would keep the weights
and the epoch only, and `--resume` of the chief's folder stays valid by construction.
When a worker dies, the others' collective operations fail; they start themselves again
in place (rejoin, the same command line) and wait for the cluster to be whole, and a
worker started again with its original command finds its folder: every worker then
continues from the last epoch all of them finished. Before training, the workers check
that they all start from the same epoch (agree_on_start).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from training.callbacks import ResumeState
from training.cluster import ClusterRole, TrainingPlan, cluster_role
from training.config import TrainConfig
from training.progress import Progress
from training.resume_run import resume
from training.trainer import TrainResult
from training.trainer import train as train_here

# How many times a worker starts itself again after losing a peer, in one job.
MAX_REJOINS = 5
_REJOINS_VARIABLE = "CONVNET_TRAIN_REJOINS"


class WorkersDisagree(RuntimeError):
    """The workers would start from different epochs: their collectives could never match."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def worker_folder(out: str | os.PathLike[str], role: ClusterRole) -> Path:
    """A non-chief worker's run folder: in the system's temporary folder, named after the
    chief's --out and this task's place in the cluster, so the same command finds it again."""
    key = hashlib.sha256(f"{os.path.abspath(out)}\n{role.key()}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"convnet-train-worker-{role.task_type}{role.task_index}-{key}"


def start_point(run_dir: Path) -> ResumeState | None:
    """The unfinished resume point in `run_dir`, or None for a new run."""
    state = ResumeState.load(run_dir) if run_dir.is_dir() else None
    return state if state is not None and state.checkpoint and not state.finished else None


def agree_on_start(plan: TrainingPlan, state: ResumeState | None) -> None:
    """WorkersDisagree unless every worker starts at the same stage and epoch (one collective)."""
    import tensorflow as tf

    stage, epoch = (state.stage, state.next_epoch) if state else (1, 0)
    mine = tf.constant([stage, stage * stage, epoch, epoch * epoch, 1], tf.float32)
    totals = plan.strategy.reduce(
        tf.distribute.ReduceOp.SUM, plan.strategy.run(lambda: tf.identity(mine)), axis=None
    ).numpy()
    count = totals[4]
    for total, squares in ((totals[0], totals[1]), (totals[2], totals[3])):
        if abs(squares * count - total * total) > 0.5:  # zero variance: every worker holds the same value
            raise WorkersDisagree(
                f"the workers would start from different epochs (this one: stage {stage}, epoch {epoch + 1}); "
                "a worker lost its folder or was killed while saving: start the job again with a new --out"
            )


def rejoin(error: BaseException) -> None:
    """Start this worker again with its own command line (a MultiWorkerMirroredStrategy cannot be
    rebuilt in a running process); returns only when the rejoin budget is spent."""
    done = int(os.environ.get(_REJOINS_VARIABLE, "0") or 0)
    if done >= MAX_REJOINS:
        _log(f"a worker left again after {done} rejoins; stopping ({type(error).__name__})")
        return
    os.environ[_REJOINS_VARIABLE] = str(done + 1)
    _log(f"a worker left the cluster ({type(error).__name__}); starting again to continue with it when it is back")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _peer_failure(error: BaseException) -> bool:
    """Whether `error` is a collective operation failing because a peer went away."""
    import tensorflow as tf

    peer_gone = (
        tf.errors.AbortedError,  # "... tried to connect with a different incarnation": it was restarted
        tf.errors.UnavailableError,
        tf.errors.CancelledError,
        tf.errors.DeadlineExceededError,
    )
    return isinstance(error, peer_gone)


def train(config: TrainConfig, callbacks: list | None = None, progress: Progress | None = None) -> TrainResult | None:
    """`convnet-train train`: alone (training.trainer.train), or as a worker of a cluster."""
    role = cluster_role(config.cluster, config.task_index)
    if role is None:
        return train_here(config, callbacks, progress)
    # Before any TensorFlow op; waits (at most --cluster-timeout) for every worker.
    stream = getattr(progress, "stream", None) if role.is_chief else None
    events_fd = stream.fileno() if stream is not None else None
    plan = TrainingPlan.multi_worker(role, config.scale_learning_rate, config.cluster_timeout, events_fd)
    if not role.is_chief:
        config.out = str(worker_folder(config.out, role))
        progress = Progress()  # the events come from the chief only
        _log(f"this worker's own files: {config.out} (deleted when the job finishes)")
    run_dir = Path(config.out)
    state = start_point(run_dir)
    try:
        agree_on_start(plan, state)
        if state is not None:
            _log(f"continuing the unfinished run in {run_dir} (its config.yaml) at epoch {state.next_epoch + 1}")
            result = resume(run_dir, callbacks, progress, plan=plan)
        else:
            result = train_here(config, callbacks, progress, plan=plan)
    except Exception as error:
        if _peer_failure(error):
            rejoin(error)
        raise
    if not role.is_chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        _log(f"the job finished; this worker removed its own files ({run_dir}); the run is the chief's")
    return result
