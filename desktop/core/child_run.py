"""Run a short child process cancellably, in its own process group, and collect what it printed.

`convnet-train adopt` (inspect and the real run) is such a child: the Adopt dialog's
worker waits on it while a Cancel button sets an event, which kills the child's whole
process group (tf2onnx and TensorFlow start helpers of their own), so nothing outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convnet_common.terminal_text import terminal_safe

MAX_OUTPUT_BYTES = 8_000_000  # an inspect report with 20,000 class names is well under this
_WINDOWS = sys.platform == "win32"


def one_line(text: object, limit: int = 400) -> str:
    """`text` as one printable line of at most `limit` characters, for a message in the window."""
    line = terminal_safe(" ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class ChildResult:
    returncode: int | None  # None: cancelled
    stdout: str
    stderr_last_line: str

    @property
    def cancelled(self) -> bool:
        return self.returncode is None


def run_child(argv: Sequence[str], cancel: threading.Event | None = None, timeout: float | None = None) -> ChildResult:
    """Run a child in its own process group, collecting its output; `cancel` kills the whole group.

    Raises OSError when argv[0] cannot be started. A child past `timeout` is killed and
    reported as failed with a message saying so.
    """
    cancel = cancel or threading.Event()
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    options: dict[str, Any] = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if _WINDOWS else {"start_new_session": True}
    )
    child = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **options
    )
    chunks: dict[str, bytes] = {"out": b"", "err": b""}

    def drain(name: str, stream) -> None:
        with contextlib.suppress(OSError, ValueError):
            while data := stream.read(65536):
                if len(chunks[name]) < MAX_OUTPUT_BYTES:
                    chunks[name] += data

    readers = [
        threading.Thread(target=drain, args=(n, s), daemon=True)
        for n, s in (("out", child.stdout), ("err", child.stderr))
    ]
    for reader in readers:
        reader.start()
    started, timed_out = time.monotonic(), False
    while child.poll() is None:
        timed_out = timeout is not None and time.monotonic() - started > timeout
        if cancel.is_set() or timed_out:
            _kill_group(child)
            break
        time.sleep(0.05)
    child.wait()
    for reader in readers:
        reader.join(5.0)
    stderr_lines = [line for line in chunks["err"].decode("utf-8", "replace").splitlines() if line.strip()]
    last = one_line(stderr_lines[-1]) if stderr_lines else ""
    if timed_out:
        return ChildResult(-1, "", f"convnet-train adopt took longer than {timeout:.0f} s and was stopped")
    if cancel.is_set():
        return ChildResult(None, "", "")
    return ChildResult(child.returncode, chunks["out"].decode("utf-8", "replace"), last)


def _kill_group(child: subprocess.Popen) -> None:
    if _WINDOWS:
        child.kill()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(child.pid, signal.SIGKILL)
