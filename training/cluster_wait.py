"""A deadline for the one wait TensorFlow gives no deadline: a worker waiting for the cluster.

Building a MultiWorkerMirroredStrategy connects to every worker of the cluster and waits
until all of them answer, at a job's start and whenever a worker that lost a peer starts
itself again (training.distributed.rejoin). TensorFlow 2.21 waits forever there, inside
C++ that keeps the interpreter's lock: a worker that never comes (back) leaves the others
hanging, no Python thread can run (a watchdog thread never wakes), and Python signal
handlers cannot run either (Ctrl+C, which convnet-train turns into a clean stop, did
nothing: measured, a lone worker of a two-worker cluster was still waiting after 13
minutes). SIGTERM is caught there by TensorFlow itself (its preemption notifier) and
does not end the wait either.

So, for the length of that wait only, SIGINT takes its default action (Ctrl+C ends the
process at once, status 130), and a small watchdog process, started beside it, ends the
wait after `timeout` seconds: it prints the message as `convnet-train: error: ...` (and
the `error` event of --progress jsonl, kind "cluster"), then interrupts the worker the
same way (SIGKILL 5 s later if that did not end it). Nothing is lost either way: no epoch
runs while waiting, and what earlier epochs saved stays (the same command resumes). The
watchdog exits as soon as the wait is over or the worker is gone (its stdin pipe closes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

# Runs in the watchdog process: no imports of ours, nothing heavy.
_WATCHDOG = r"""
import json, os, select, signal, sys, time
parent, timeout, events_fd, message = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ready, _, _ = select.select([sys.stdin], [], [], timeout)
if ready:  # the pipe closed: the wait is over, or the worker is gone
    sys.exit(0)
if events_fd >= 0:
    event = {"event": "error", "time": time.time(), "kind": "cluster", "message": message}
    try:
        os.write(events_fd, (json.dumps(event) + "\n").encode("ascii"))
    except OSError:
        pass
sys.stderr.write("convnet-train: error: " + message + "\n")
sys.stderr.flush()
for number in (signal.SIGINT, signal.SIGKILL):  # SIGKILL if the interrupt did not end it
    try:
        os.kill(parent, number)
    except ProcessLookupError:
        break
    ready, _, _ = select.select([sys.stdin], [], [], 5.0)
    if ready:
        break
"""


@contextlib.contextmanager
def cluster_deadline(timeout: float, message: str, events_fd: int | None = None) -> Iterator[None]:
    """Run the body (building the strategy) under the deadline described above. `timeout`
    0 waits forever, as TensorFlow does; `events_fd`: the --progress jsonl stream's file
    descriptor, if any."""
    watchdog = None
    if timeout > 0:
        fds = (events_fd,) if events_fd is not None else ()
        argv = [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout), str(events_fd or -1), message]
        watchdog = subprocess.Popen(argv, stdin=subprocess.PIPE, pass_fds=fds)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if watchdog is not None:
            watchdog.stdin.close()  # the wait is over: the watchdog exits
            watchdog.wait()
