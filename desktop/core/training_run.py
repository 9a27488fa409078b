"""One `convnet-train train … --progress jsonl` child, and the state its events describe.

The app never imports TensorFlow: it runs convnet-train as a child and reads one JSON
object per stdout line (schema version 1, see RunProgress.apply); stderr carries the
human text, of which the last lines are kept to explain a crash.

`TrainingProcess` owns the child. It starts it in its own session (POSIX) or process
group (Windows), so Stop and Kill reach whatever the child started too, and a GUI timer
drains its events with `poll_events()` without ever blocking. One waiter thread is the
only one that reaps the child: it first sees the exit without reaping (waitid WNOWAIT),
so the process-group id is still reserved by the zombie when the leftover members of the
group are killed; `close()` escalates SIGTERM → SIGKILL and leaves no orphan.
After the child's last line the queue yields one app-side event, {"event":
"process_exit", "returncode", "stderr_tail"}, so RunProgress can tell a finished run
from one that died without a word (killed, out of memory).

`RunProgress` is plain state built only from events (no threads, no Qt), so it is
tested on recorded sequences and the Qt view only draws it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import weakref
from typing import IO, Any

from convnet_common.safe_json import JsonInputError, loads_limited
from desktop.core.run_history import EpochRecord, finite, has_resume_point, whole

MAX_LINE_BYTES = 1_000_000  # a progress line is a few hundred bytes; longer is not ours
MAX_PENDING_EVENTS = 20_000  # undrained batch/unparsed events beyond this are dropped
STDERR_LINES = 60
PROCESS_EXIT = "process_exit"
UNPARSED = "unparsed"
_WINDOWS = sys.platform == "win32"
_live: weakref.WeakSet[TrainingProcess] = weakref.WeakSet()


def parse_line(raw: bytes) -> dict:
    """One stdout line as an event; anything else as {"event": "unparsed", "text": …}."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    try:
        event = loads_limited(text, MAX_LINE_BYTES, "progress line")
    except JsonInputError:
        event = None
    if isinstance(event, dict) and isinstance(event.get("event"), str) and event["event"] != PROCESS_EXIT:
        return event
    return {"event": UNPARSED, "text": text[:2000]}


class TrainingProcess:
    """A running convnet-train child: events in, signals out; see the module docstring.
    Raises OSError (FileNotFoundError, PermissionError) when argv[0] cannot be started."""

    def __init__(self, argv: list[str] | tuple[str, ...], cwd: str | os.PathLike[str] | None = None, env=None):
        environment = dict(os.environ if env is None else env)
        environment["PYTHONUNBUFFERED"] = "1"  # one line per event, as it happens
        environment.setdefault("PYTHONIOENCODING", "utf-8")
        options: dict[str, Any] = {"start_new_session": True}
        if _WINDOWS:
            options = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        self.argv = list(argv)
        self._events: collections.deque[dict] = collections.deque()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._lock = threading.Lock()
        self._exited = threading.Event()
        self._returncode: int | None = None
        self.dropped_events = 0
        pipes = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        self._proc = subprocess.Popen(self.argv, cwd=cwd, env=environment, **pipes, **options)
        self.pid = self._proc.pid
        self._out_thread = self._thread(self._read_stdout, self._proc.stdout, "stdout")
        self._err_thread = self._thread(self._read_stderr, self._proc.stderr, "stderr")
        self._wait_thread = self._thread(self._wait, None, "waiter")
        _live.add(self)

    def _thread(self, target, stream: IO[bytes] | None, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=(stream,), name=f"convnet-train {name}", daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ readers

    @staticmethod
    def _lines(stream: IO[bytes]):
        """Lines of at most MAX_LINE_BYTES; the rest of a longer line is dropped."""
        while chunk := stream.readline(MAX_LINE_BYTES):
            if not chunk.endswith(b"\n") and len(chunk) >= MAX_LINE_BYTES:
                while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
            yield chunk

    def _read_stdout(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self._lines(stream):
                self._push(parse_line(raw))

    def _push(self, event: dict) -> None:
        with self._lock:
            if len(self._events) >= MAX_PENDING_EVENTS and event["event"] in ("batch", UNPARSED):
                self.dropped_events += 1
                return
            self._events.append(event)

    def _read_stderr(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self._lines(stream):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._lock:
                    self._stderr.append(line[:2000])

    def _wait(self, _stream: None) -> None:
        """The only reaper. On POSIX: see the exit first, kill what is left of the group
        while the zombie still holds its id, then reap; then wait for the readers."""
        if not _WINDOWS:
            with contextlib.suppress(ChildProcessError, InterruptedError, OSError):
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            self._signal_group(signal.SIGKILL)  # orphans of a finished child; usually none
        returncode = self._proc.wait()
        # A reader still blocked after this means a process outside the group holds the
        # pipe; its stream is then left open (closing it under the reader could block).
        for thread, stream, patience in (
            (self._out_thread, self._proc.stdout, 5.0),
            (self._err_thread, self._proc.stderr, 1.0),
        ):
            thread.join(patience)
            if not thread.is_alive():
                with contextlib.suppress(OSError):
                    stream.close()
        with self._lock:
            self._returncode = returncode
            self._events.append({"event": PROCESS_EXIT, "returncode": returncode, "stderr_tail": list(self._stderr)})
        self._exited.set()

    # ------------------------------------------------------------------ state

    def poll_events(self) -> list[dict]:
        """Every event read since the last call (never blocks)."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    @property
    def running(self) -> bool:
        return not self._exited.is_set()

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: killed by that signal), else None."""
        return self._returncode

    @property
    def stderr_tail(self) -> list[str]:
        with self._lock:
            return list(self._stderr)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status, or None if the child still runs after `timeout` seconds."""
        self._exited.wait(timeout)
        return self._returncode

    # ------------------------------------------------------------------ signals

    def _signal_group(self, sig: int) -> None:
        """`sig` to the child's whole process group (its session leader's group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(self.pid, sig)

    def _send(self, sig: int, on_windows) -> None:
        if self.running:
            if _WINDOWS:
                with contextlib.suppress(OSError):
                    on_windows()
            else:
                self._signal_group(sig)

    def request_stop(self) -> None:
        """Ctrl+C for the run: convnet-train saves its resume point and exits 130."""
        self._send(signal.SIGINT, lambda: self._proc.send_signal(signal.CTRL_BREAK_EVENT))

    def terminate(self, timeout: float = 10.0) -> bool:
        """SIGTERM (the resume point is kept, exit 143); True if it exited within `timeout`."""
        self._send(signal.SIGTERM, self._proc.terminate)
        return self.wait(timeout) is not None

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL to the whole group: nothing is saved beyond the last finished epoch."""
        self._send(signal.SIGKILL, self._proc.kill)
        return self.wait(timeout) is not None

    def close(self, grace: float = 10.0) -> int | None:
        """Ends the child and everything it started, and reaps it: for the window closing.
        Stop (SIGINT) is not used: a run stopping at an epoch's end could take minutes."""
        if self.running and not self.terminate(grace):
            self.kill(5.0)
        # Members that outlive the child were killed by the waiter before it reaped it.
        self._wait_thread.join(10.0)
        _live.discard(self)
        return self._returncode


@atexit.register
def _close_all() -> None:
    """An app exiting without close() (an exception in the window) still leaves no child."""
    for process in list(_live):
        process.close(grace=3.0)


# ---------------------------------------------------------------------- state from events

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
        record = EpochRecord(
            epoch=epoch,
            stage=whole(e.get("stage")),
            loss=finite(e.get("loss")),
            accuracy=finite(e.get("accuracy")),
            val_loss=finite(e.get("val_loss")),
            val_accuracy=finite(e.get("val_accuracy")),
            learning_rate=finite(e.get("learning_rate")),
            seconds=finite(e.get("seconds")),
        )
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
