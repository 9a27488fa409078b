"""Helpers for the kill tests: start a Python child from the repository, SIGKILL it.

A child either dies at a random moment (`kill_after`) or kills itself at the worst one:
`HALF_WRITE_KILL` is prepended to a child's script so that the first write into a
chosen folder writes half its bytes, flushes them, and SIGKILLs the process — the state
a crash leaves in the middle of a write, reproduced exactly every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Prepended to a child script; the child sets KILL_IN to the folder whose writes must die.
HALF_WRITE_KILL = r"""
import builtins, os, signal
KILL_IN = None
_real_open = builtins.open

class _DieHalfway:
    def __init__(self, handle):
        self._handle = handle
    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        os.fsync(self._handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    def __getattr__(self, name):
        return getattr(self._handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._handle.close()

def _open(file, mode="r", *args, **kwargs):
    handle = _real_open(file, mode, *args, **kwargs)
    writing = any(flag in mode for flag in "wax+")
    named = isinstance(file, (str, bytes, os.PathLike))
    if KILL_IN is not None and writing and named and os.path.dirname(os.path.abspath(os.fsdecode(file))) == KILL_IN:
        return _DieHalfway(handle)
    return handle

builtins.open = _open
"""


def child_env() -> dict[str, str]:
    """The environment for a child: the repository importable, TensorFlow quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def start(script: str, *args: str, stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    """Run `script` with `python -c` in the repository root (a new process group)."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=child_env(),
        stdout=stdout,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )


def sigkill(process: subprocess.Popen) -> None:
    """SIGKILL the child (and anything it started) and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


def run_to_end(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `script` to completion; the caller checks the return code."""
    process = start(script, *args)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
