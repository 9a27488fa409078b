"""Write files so that a crash mid-write leaves the previous version intact."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it into place on success.

    The temporary file lives in the same folder so the final `os.replace` is atomic.
    On any exception the temporary file is removed and `destination` is untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".partial" + "".join(destination.suffixes), dir=destination.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the mode a plain open() would,
        # or keep the mode of the file being replaced.
        try:
            mode = destination.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_current_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(destination: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(destination) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(destination, text.encode("utf-8"))
