"""A sort and an undo of the same DEST never run at once.

An undo started while a sort into DEST was still running (another window, another
`convnet-classify`) read a log still being written and moved files back while the sort
kept moving others in: some files ended at their source, some in DEST, and neither log
described the result. Every sort now holds a SHARED lock on the DEST folder itself for its whole
run (sorts may overlap: each takes free names and logs its own moves), and an undo takes
the EXCLUSIVE lock without waiting: while any sort runs it stops with a message, and a sort
started while an undo runs does the same.

`fcntl.flock` on the folder's own descriptor (no lock file: DEST holds only the sorted
images and their logs) belongs to the open file: the kernel drops it when the process
dies, so a killed sort never blocks a later undo. Windows has no shared flock; there the lock is
not taken (documented; the logs still record every move).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path


class SortBusyError(OSError):
    """A sort or an undo of the same DEST is running; the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EBUSY, message)

    def __str__(self) -> str:
        return self.strerror


@contextlib.contextmanager
def _locked(dest: Path, exclusive: bool, busy_message: str) -> Iterator[None]:
    if sys.platform == "win32":
        yield
        return
    import fcntl

    fd = os.open(dest, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SortBusyError(busy_message) from None
        yield
    finally:
        os.close(fd)  # closing drops the lock


def sorting(dest: str | os.PathLike[str]) -> contextlib.AbstractContextManager[None]:
    """Held by a sort into `dest` (an existing folder) for its whole run."""
    dest = Path(dest)
    return _locked(dest, False, f"an undo of {dest} is running; sort into it when the undo has finished")


def undoing(dest: str | os.PathLike[str]) -> contextlib.AbstractContextManager[None]:
    """Held by an undo of sorts into `dest`; refuses at once while a sort into it runs."""
    dest = Path(dest)
    return _locked(dest, True, f"a sort into {dest} is still running; undo it when the sort has finished")
