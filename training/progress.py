"""`convnet-train train --progress jsonl`: training progress as one JSON object per line.

The desktop app runs `convnet-train` as a child process and must follow a run without
parsing text meant for people (which changes whenever a message is reworded) or Keras's
progress bars. So with `--progress jsonl`, stdout carries only the events below, one per
line, flushed as each is written, and everything else -- our own messages, Keras and
TensorFlow -- goes to stderr: `jsonl_stdout` points file descriptor 1 itself at stderr
(C++ code writing to fd 1 cannot break the stream either) and keeps a private copy of
the real stdout for the events. The schema (version 1) is documented, with an example,
in docs/training-progress.md; the app's parser is written against it, so a field is
never renamed or removed without raising VERSION.

Every line is strict JSON: non-finite floats become null (`json` would write bare NaN,
which strict parsers refuse), text is ASCII with \\u escapes (whatever the pipe's
encoding), and the bytes of a file name that is not UTF-8 appear as \\xNN, as they do in
split.json and the skipped lines (training.data). The trainer and its callbacks are
handed a `Progress`; a disabled one (text mode) does nothing, so nothing deep in the
library prints or checks a flag itself. This module imports no TensorFlow: the command
line reports errors through it before (or without) loading TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from convnet_common.run_layout import RunFolder
from convnet_common.safe_json import read_json
from convnet_common.terminal_text import terminal_safe
from convnet_common.utf8_text import as_utf8

VERSION = 1
MAX_STATE_BYTES = 1_000_000  # as training.callbacks reads state.json


def json_text(text: str | os.PathLike[str]) -> str:
    """`text` as a string any JSON reader decodes: bytes of a name that is not UTF-8 (which
    Python carries as surrogate escapes) become \\xNN, as in split.json; a lone surrogate
    that is no escaped byte becomes \\udNNN."""
    return as_utf8(os.fspath(text), "backslashreplace")


def _plain(value: Any) -> Any:
    """A JSON-ready copy: floats finite or None, numpy scalars as Python numbers, paths as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike)):
        return json_text(value)
    if isinstance(value, dict):
        return {json_text(str(key)): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, numbers.Integral):  # int and numpy's integers
        return int(value)
    return _number(value)  # float, numpy scalar, 0-d array


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _absolute(path: str | os.PathLike[str]) -> str:
    return json_text(os.path.abspath(os.fspath(path)))


def planned_last_epoch(stages: Iterable[tuple[int, int, float]], stage: int, next_epoch: int, stage_end: int | None):
    """The global epoch number a run in `stage`, next starting at zero-based `next_epoch`,
    is planned to end at: the end of the stage under way (`stage_end`, once it started)
    plus the epochs of the stages after it. Early stopping moves it down."""
    end = next_epoch
    for number, epochs, _ in stages:
        if number == stage and stage_end is not None:
            end = stage_end
        elif number >= stage:
            end += epochs
    return end


class Progress:
    """The event stream. Without a stream (text mode) every method does nothing."""

    def __init__(self, stream: TextIO | None = None, command: str = "train", clock=time.time):
        self.stream, self.command, self.clock = stream, command, clock
        self.started = time.monotonic()
        self._claimed: tuple[TextIO, int] | None = None

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def emit(self, event: str, **fields: Any) -> None:
        if self.stream is None:
            return
        line = json.dumps({"event": event, "time": self.clock(), **_plain(fields)}, allow_nan=False)
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except OSError as error:  # the reader went away: the run goes on, resumable as ever
            stream, self.stream = self.stream, None
            with contextlib.suppress(OSError):
                stream.close()  # what is left in its buffer cannot be written either
            print(f"progress stream closed ({error}); training continues", file=sys.stderr, flush=True)

    # the events, in the order a run sends them --------------------------------------
    def start(self, config, backbone: str, stages: list[tuple[int, int, float]], resume=None) -> None:
        """`stages`: (stage, epochs, learning rate) each; `resume`: the ResumeState of a resumed run."""
        self.started = time.monotonic()
        where = (resume.stage, resume.next_epoch, resume.stage_end) if resume is not None else (1, 0, None)
        self.emit(
            "start",
            version=VERSION,
            command=self.command,
            run_dir=_absolute(config.out),
            data_dir=_absolute(config.data_dir),
            backbone=backbone,
            weights=str(config.weights),
            epochs=planned_last_epoch(stages, *where),
            stages=len(stages),
            batch_size=config.batch_size,
            image_size=[config.image_size, config.image_size],
        )

    def dataset(self, class_names: list[str], train: list, validation: list, skipped) -> None:
        counts = dict.fromkeys(class_names, 0)
        for sample in (*train, *validation):
            counts[class_names[sample.label]] += 1
        self.emit(
            "dataset",
            classes=class_names,
            counts=counts,
            train=len(train),
            validation=len(validation),
            skipped=[{"path": path, "reason": reason} for path, reason in skipped],
        )

    def stage(self, stage: int, stages: int, epochs: tuple[int, int], learning_rate: float, model, what: str) -> None:
        """`epochs`: the stage's first and last global epoch numbers, 1-based."""
        if not self.enabled:
            return
        trainable = sum(math.prod(int(d) for d in variable.shape) for variable in model.trainable_weights)
        self.emit(
            "stage",
            stage=stage,
            stages=stages,
            first_epoch=epochs[0],
            last_epoch=epochs[1],
            learning_rate=learning_rate,
            trainable_parameters=trainable,
            description=what,
        )

    def done(self, run_dir, state, history: list[dict], beats_chance: bool) -> None:
        """`state`: the finished run's ResumeState; `history`: history.csv's rows."""
        best_epoch, best, epochs_run = state.best_epoch, state.best, state.next_epoch
        row = next((row for row in history if str(row.get("epoch")) == str(best_epoch)), {})
        self.emit(
            "done",
            run_dir=_absolute(run_dir),
            best={
                "epoch": max(best_epoch, 0),
                "val_accuracy": _number(best),
                "val_loss": _number(row.get("val_loss") or None),
            },
            epochs_run=epochs_run,
            seconds=round(time.monotonic() - self.started, 3),
            beats_chance=bool(beats_chance),
        )

    def stopped(self, terminated: bool, run_dir: str | None) -> None:
        """After Ctrl+C or SIGTERM: the last saved epoch and how to continue from it."""
        if not self.enabled:
            return
        state = _resume_point(run_dir)
        saved = bool(state.get("checkpoint")) and isinstance(state.get("next_epoch"), int)
        resumable = saved and not state.get("finished")
        self.emit(
            "stopped",
            reason="terminated" if terminated else "interrupted",
            epoch=state["next_epoch"] if saved else 0,
            run_dir=_absolute(run_dir) if run_dir else None,
            resume_command=(
                ["convnet-train", "train", "--resume", _absolute(run_dir), "--progress", "jsonl"] if resumable else None
            ),
        )

    def error(self, kind: str, message: str) -> None:
        self.emit("error", kind=kind, message=message)

    # where the events go ------------------------------------------------------------
    def claim_stdout(self) -> None:
        """Send the events to the real stdout and everything else written there to stderr
        (file descriptor 1 itself, so C++ code is redirected too). Idempotent."""
        if self._claimed is not None:
            return
        sys.stdout.flush()
        events_fd = os.dup(1)
        saved_fd = os.dup(1)
        os.dup2(2, 1)
        self._claimed = (sys.stdout, saved_fd)
        sys.stdout = sys.stderr
        self.stream = os.fdopen(events_fd, "w", encoding="ascii", newline="\n")

    def release_stdout(self) -> None:
        """Put stdout back as it was (for a caller that runs main() in-process)."""
        if self._claimed is None:
            return
        previous, saved_fd = self._claimed
        self._claimed = None
        if self.stream is not None:
            try:
                self.stream.close()
            except OSError:
                pass
            self.stream = None
        sys.stderr.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        sys.stdout = previous


def _resume_point(run_dir: str | None) -> dict:
    """state.json as a dict ({} when there is none or it is unreadable); read here rather
    than through training.callbacks, which would load TensorFlow for a stop before it was."""
    if not run_dir:
        return {}
    try:
        state = read_json(RunFolder(run_dir).state, MAX_STATE_BYTES, "the resume point")
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def asks_for_jsonl(argv: list[str]) -> bool:
    """`--progress jsonl` as typed in full, seen before parsing so that a refused command line
    is reported as an event too (an abbreviation is honoured once parsed)."""
    return "--progress=jsonl" in argv or any(a == "--progress" and b == "jsonl" for a, b in zip(argv, argv[1:]))


def report_stop(stop: KeyboardInterrupt, command: str, where: str | None, progress: Progress) -> int:
    """After Ctrl+C (exit 130) or SIGTERM (143): one line for people, with the resume command
    when there is a resume point (a run stopped before its first saved epoch was removed),
    and the "stopped" event."""
    terminated = isinstance(stop, Terminated)
    resumable = bool(where) and RunFolder(where).state.is_file()
    hint = f"; continue with: convnet-train train --resume {where}" if command == "train" and resumable else ""
    print(f"\nconvnet-train: {'terminated' if terminated else 'interrupted'}{terminal_safe(hint)}", file=sys.stderr)
    if command == "train":
        progress.stopped(terminated, where)
    return 143 if terminated else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (the app's Stop, `kill`): stops a run exactly where Ctrl+C would."""


@contextmanager
def sigterm_stops(enabled: bool = True) -> Iterator[None]:
    """While inside, SIGTERM raises Terminated in the main thread, so a run stops the way
    Ctrl+C stops it: the epoch under way is dropped, the last saved one is the resume
    point, and a run stopped before its first saved epoch removes its folder. A second
    SIGTERM while that cleanup runs kills the process as SIGTERM always did."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
