"""One `convnet-train train … --progress jsonl` child, and the state its events describe.

The app never imports TensorFlow: it runs convnet-train as a child and reads one JSON
object per stdout line (schema version 1, see desktop.core.run_progress); stderr carries
the human text, of which the last lines are kept to explain a crash.

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
