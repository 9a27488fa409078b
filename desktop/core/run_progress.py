"""What a `convnet-train … --progress jsonl` run is doing, built from its events alone.

`RunProgress` is plain state (no threads, no Qt, no process): `apply(event)` for each
event that desktop.core.training_run's TrainingProcess yields, including its app-side
{"event": "process_exit"} after the child's last line. Kept apart from the process so it
is tested on recorded event sequences, and the Qt run panel only draws it. The events are
schema version 1 (docs/training-progress.md); unknown events and fields are ignored, so a
newer convnet-train still draws.
"""

from __future__ import annotations

import collections
import signal
from typing import Any

from desktop.core.run_history import EpochRecord, finite, has_resume_point, whole

STARTING, RUNNING, STOPPING, STOPPED, DONE, FAILED = "starting", "running", "stopping", "stopped", "done", "failed"
_EXIT_WORDS = {
    0: "finished",
    1: "failed (exit status 1)",
    2: "refused its arguments (exit status 2)",
    130: "stopped by Ctrl+C (exit status 130)",
    143: "stopped by a terminate request (exit status 143)",
}


def describe_exit(returncode: int | None) -> str:
    """An exit status in words, e.g. "killed by SIGKILL (often: out of memory)"."""
    if returncode is None:
        return "still running"
    if returncode in _EXIT_WORDS:
        return _EXIT_WORDS[returncode]
    number = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 160 else None
    if number is None:
        return f"failed (exit status {returncode})"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    hint = " (often: the system ran out of memory)" if name == "SIGKILL" else ""
    hint = " (a crash inside the process)" if name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL") else hint
    return f"killed by {name}{hint}"


class RunProgress:
    """Everything the Train tab shows, from events alone: `apply(event)` for each."""

    SMOOTHING = 0.3  # weight of a new images/s reading

    def __init__(self, run_dir: str | None = None):
        self.state, self.run_dir = STARTING, run_dir
        # From `start`: what runs, and how long it is planned to take.
        self.command = self.data_dir = self.backbone = None  # str | None
        self.planned_epochs = self.stages = self.batch_size = None  # int | None
        # From `dataset`.
        self.classes: list[str] = []
        self.counts: dict[str, int] = {}
        self.train_images = self.val_images = None  # int | None
        self.skipped: list[dict] = []
        # Curves and stages: stage_starts maps a stage to its first (1-based, global) epoch.
        self.epochs: list[EpochRecord] = []
        self.stage_starts: dict[int, int] = {}
        self.stage_descriptions: dict[int, str] = {}
        # Where it is now.
        self.stage = self.epoch = self.batch = self.batches = None  # int | None
        self.images_per_second: float | None = None  # smoothed
        self.best: dict | None = None  # {"epoch", "val_accuracy", "val_loss"}
        self.early_stops: list[dict] = []
        # How it ended: error / exit in words / stderr tail / resume offer / the `done` event.
        self.error = self.error_kind = self.exit_description = None  # str | None
        self.returncode: int | None = None
        self.stderr_tail: list[str] = []
        self.resume_command: list[str] | None = None
        self.can_resume = False
        self.result: dict | None = None
        self.unparsed: collections.deque[str] = collections.deque(maxlen=20)
        self.last_time: float | None = None  # "time" of the newest event
        self._epoch_started: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in (STOPPED, DONE, FAILED)

    def mark_stopping(self) -> None:
        """The user asked to stop; the child says `stopped` once its resume point is saved."""
        if not self.finished:
            self.state = STOPPING

    def apply(self, event: dict) -> None:
        """Update from one event; unknown events and missing or mistyped fields are ignored."""
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        when = finite(event.get("time"))
        if when is not None:
            self.last_time = when
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) and kind.isidentifier() else None
        if handler is not None:
            handler(event, when)

    def _on_start(self, e: dict, when: float | None) -> None:
        self.state = RUNNING if self.state == STARTING else self.state
        self.command = _str(e.get("command"))
        self.run_dir = _str(e.get("run_dir")) or self.run_dir
        self.data_dir, self.backbone = _str(e.get("data_dir")), _str(e.get("backbone"))
        self.planned_epochs, self.stages = whole(e.get("epochs")), whole(e.get("stages"))
        self.batch_size = whole(e.get("batch_size"))
        self._epoch_started = when

    def _on_dataset(self, e: dict, _when: float | None) -> None:
        classes = e.get("classes")
        self.classes = [c for c in classes if isinstance(c, str)] if isinstance(classes, list) else []
        counts = e.get("counts")
        if isinstance(counts, dict):
            self.counts = {str(k): v for k, v in counts.items() if whole(v) is not None}
        self.train_images, self.val_images = whole(e.get("train")), whole(e.get("validation"))
        skipped = e.get("skipped")
        self.skipped = [s for s in skipped if isinstance(s, dict)][:10_000] if isinstance(skipped, list) else []

    def _on_stage(self, e: dict, when: float | None) -> None:
        stage, first, last = whole(e.get("stage")), whole(e.get("first_epoch")), whole(e.get("last_epoch"))
        self.stages = whole(e.get("stages")) or self.stages
        if stage is not None:
            self.stage = stage
            if first is not None:
                self.stage_starts[stage] = first
            self.stage_descriptions[stage] = _str(e.get("description")) or ""
            if last is not None and (self.stages is None or stage >= self.stages):
                self.planned_epochs = last  # the last stage's end is the run's end
        self._epoch_started = when

    def _on_batch(self, e: dict, when: float | None) -> None:
        self.state = RUNNING if self.state == STARTING else self.state
        epoch = whole(e.get("epoch"))
        if epoch is not None and epoch != self.epoch:
            self.epoch = epoch
            self._epoch_started = self._epoch_started if self._epoch_started is not None else when
        self.stage = whole(e.get("stage")) or self.stage
        self.batch, self.batches = whole(e.get("batch")), whole(e.get("batches"))
        rate = finite(e.get("images_per_second"))
        if rate is not None and rate >= 0:
            old = self.images_per_second
            self.images_per_second = rate if old is None else old + self.SMOOTHING * (rate - old)

    def _on_epoch(self, e: dict, when: float | None) -> None:
        epoch = whole(e.get("epoch"))
        if epoch is None:
            return
        record = EpochRecord.from_fields(epoch, whole(e.get("stage")), e, finite)
        self.epochs = [r for r in self.epochs if r.epoch != epoch] + [record]
        self.epoch, self.batch, self._epoch_started = epoch, None, when
        self.stage = record.stage or self.stage
        self.planned_epochs = whole(e.get("epochs")) or self.planned_epochs
        if record.val_accuracy is not None and (self.best is None or record.val_accuracy > self.best["val_accuracy"]):
            self.best = {"epoch": epoch, "val_accuracy": record.val_accuracy, "val_loss": record.val_loss}

    def _on_checkpoint(self, e: dict, _when: float | None) -> None:
        if e.get("kind") == "resume":
            self.can_resume = True

    def _on_early_stop(self, e: dict, _when: float | None) -> None:
        self.early_stops.append({k: e.get(k) for k in ("stage", "epoch", "monitor", "patience")})

    def _on_stopped(self, e: dict, _when: float | None) -> None:
        self.state = STOPPED
        self.run_dir = _str(e.get("run_dir")) or self.run_dir
        argv = e.get("resume_command")
        self.resume_command = [a for a in argv if isinstance(a, str)] if isinstance(argv, list) else None
        self.can_resume = True

    def _on_done(self, e: dict, _when: float | None) -> None:
        self.state, self.result, self.can_resume = DONE, e, False
        self.run_dir = _str(e.get("run_dir")) or self.run_dir
        best = e.get("best")
        if isinstance(best, dict) and finite(best.get("val_accuracy")) is not None:
            self.best = {"epoch": whole(best.get("epoch")), "val_accuracy": finite(best.get("val_accuracy"))}
            self.best["val_loss"] = finite(best.get("val_loss"))

    def _on_error(self, e: dict, _when: float | None) -> None:
        self.state, self.error_kind = FAILED, _str(e.get("kind"))
        self.error = _str(e.get("message")) or "convnet-train reported an error"

    def _on_unparsed(self, e: dict, _when: float | None) -> None:
        self.unparsed.append(_str(e.get("text")) or "")

    def _on_process_exit(self, e: dict, _when: float | None) -> None:
        self.returncode = whole(e.get("returncode"))
        tail = e.get("stderr_tail")
        self.stderr_tail = [t for t in tail if isinstance(t, str)] if isinstance(tail, list) else []
        self.exit_description = describe_exit(self.returncode)
        if self.state == DONE:
            return
        if self.state != STOPPED and self.state != FAILED:
            stopped = self.returncode in (130, 143, -signal.SIGINT, -signal.SIGTERM)
            self.state = STOPPED if stopped else FAILED
            if self.state == FAILED and self.error is None:
                self.error = f"convnet-train {self.exit_description} without reporting why"
        self.can_resume = has_resume_point(self.run_dir)

    # ------------------------------------------------------------------ derived

    def epoch_fraction(self) -> float:
        """How much of the current epoch is done (0 before its first batch)."""
        if self.batch is None or not self.batches:
            return 0.0
        return min(1.0, max(0.0, self.batch / self.batches))

    def epoch_seconds(self) -> float | None:
        """A typical epoch's length: the mean of the last three of this stage; else the
        current epoch extrapolated from its first batches (stage 2 unfreezes layers and is
        slower than stage 1); else the last epochs of any stage."""
        timed = [r for r in self.epochs if r.seconds is not None and r.seconds >= 0]
        same = [r.seconds for r in timed if r.stage == self.stage][-3:]
        if same:
            return sum(same) / len(same)
        fraction = self.epoch_fraction()
        if fraction >= 0.05 and self._epoch_started is not None and self.last_time is not None:
            return (self.last_time - self._epoch_started) / fraction
        recent = [r.seconds for r in timed][-3:]
        return sum(recent) / len(recent) if recent else None

    def time_left(self, now: float | None = None) -> float | None:
        """Seconds until the planned last epoch ends (early stopping may end sooner), as of
        the last event, or of `now` (unix time) if given; None before there is a basis."""
        if self.finished:
            return 0.0
        per_epoch = self.epoch_seconds()
        if per_epoch is None or self.planned_epochs is None:
            return None
        done = max((r.epoch for r in self.epochs), default=0)
        current = self.epoch if self.epoch is not None and self.epoch > done else done + 1
        in_current = 0.0 if current > self.planned_epochs else (1.0 - self.epoch_fraction()) * per_epoch
        left = in_current + max(0, self.planned_epochs - current) * per_epoch
        if now is not None and self.last_time is not None:
            left -= max(0.0, now - self.last_time)
        return max(0.0, left)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
