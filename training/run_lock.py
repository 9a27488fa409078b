"""One process per run folder: an exclusive lock on RUN_DIR/.lock for the whole run.

Two `convnet-train train` on the same `--out` used to run side by side with no warning
and leave a folder whose config.yaml came from one run and whose checkpoint from the
other; `--resume` then failed ("9 objects could not be loaded"). `train` and `--resume`
now take this lock before they write anything and hold it until they return, so a
second one fails at once, naming the process that holds the folder.

The lock is `fcntl.flock` on an open file: the kernel drops it when the process dies,
however it dies (SIGKILL included), so a `.lock` left by a killed run never blocks the
next one. On Windows `msvcrt.locking` on the first byte does the same. The file is
removed on release (while still locked, and a taker checks that the file it locked is
still the one at the path, so two takers can never each hold a different file).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from convnet_common.run_layout import RunFolder

LOCK_NAME = ".lock"


class RunInUseError(RuntimeError):
    """Another process holds the run folder."""


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return "pid unknown"
    return f"pid {text}" if text.isdigit() else "pid unknown"


class RunLock:
    """`with RunLock(run_dir):` holds the folder; `create=False` for a folder that must exist."""

    def __init__(self, run_dir: str | os.PathLike[str], create: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.create = create
        self.fd: int | None = None
        self.created_dir = False

    def __enter__(self) -> RunLock:
        if not self.run_dir.is_dir():
            if not self.create:
                return self  # nothing to hold: the caller reports the missing run
            self.run_dir.mkdir(parents=True)
            self.created_dir = True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                self._undo_dir()
                raise RunInUseError(f"{self.run_dir} is in use by another convnet-train ({_holder(self.path)})")
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed it as we opened it: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self.fd = fd
        return self

    def __exit__(self, *exc) -> bool:
        if self.fd is not None:
            try:
                self.path.unlink(missing_ok=True)  # still locked: nobody takes the old file
            except OSError:
                pass  # Windows: an open file cannot be removed; the next run reuses it
            os.close(self.fd)
            self.fd = None
        self._undo_dir()
        return False

    def _undo_dir(self) -> None:
        """A folder made only to hold the lock goes again if nothing else was put in it."""
        if self.created_dir:
            try:
                self.run_dir.rmdir()
            except OSError:
                pass


class RunExistsError(ValueError):
    """`train --out` names a folder that already holds a run."""


def refuse_existing_run(run_dir: str | os.PathLike[str]) -> None:
    """A new run never writes over one that saved an epoch: its config.yaml would no longer
    match its checkpoint, and the earlier run could neither be resumed nor trusted."""
    state = RunFolder(run_dir).state
    if state.is_file() or state.is_symlink():
        raise RunExistsError(
            f"{run_dir} already holds a run; continue it with `convnet-train train --resume "
            f"{run_dir}`, or choose another --out"
        )
