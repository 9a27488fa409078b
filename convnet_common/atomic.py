"""Write files so that a crash mid-write leaves the previous version intact.

Every file the project writes goes through here: the data is written to a temporary
file beside the target, flushed to disk, and renamed over the target in one step, so
a reader (or a crash, or SIGKILL) sees either the whole old file or the whole new one.

Temporary files are named `.NAME.PID.RANDOM.partial.SUFFIXES` (the target's suffixes kept,
because Keras insists on `.keras` / `.weights.h5`). One left behind by a killed writer
is removed by the next successful write of the same target, once no process with that
PID is running on this machine (on Windows, where that cannot be asked safely, once it
is a day old).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_MARKER = ".partial"
# Longest target name kept whole inside a temporary name (file names stop at 255 bytes).
_MAX_NAME_IN_TEMP = 150
_STALE_AGE_S = 24 * 3600
_TEMP_MIDDLE = re.compile(r"(\d+)\.[a-z0-9_]{8}")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_parts(destination: Path) -> tuple[str, str]:
    """(prefix, suffix) of the temporary names for `destination`, without the PID/random middle."""
    suffixes = "".join(destination.suffixes)
    name = destination.name
    if len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME_IN_TEMP or len(suffixes) > 40:
        suffixes = destination.suffix[:40]
        name = name.encode("utf-8", "surrogateescape")[:_MAX_NAME_IN_TEMP].decode("utf-8", "ignore")
    return f".{name}.", f"{TEMP_MARKER}{suffixes}"


def _temp_pid(entry_name: str, prefix: str, suffix: str) -> int | None:
    """The writer's PID if `entry_name` is a temporary file of this target, else None."""
    if not (entry_name.startswith(prefix) and entry_name.endswith(suffix)):
        return None
    middle = entry_name[len(prefix) : len(entry_name) - len(suffix)]
    match = _TEMP_MIDDLE.fullmatch(middle)
    return int(match.group(1)) if match else None


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of ours may be writing the same target right now
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists (another user's process) or cannot tell: leave it alone
    return True


def leftover_temp_files(destination: str | os.PathLike[str]) -> list[Path]:
    """Temporary files of `destination` in its folder, from any writer, live or dead."""
    destination = Path(destination)
    prefix, suffix = _temp_parts(destination)
    try:
        entries = list(os.scandir(destination.parent))
    except OSError:
        return []
    return sorted(Path(e.path) for e in entries if _temp_pid(e.name, prefix, suffix) is not None)


def _stale(path: Path, pid: int) -> bool:
    if not _process_alive(pid):
        return True
    if os.name == "posix":
        return False
    try:
        return time.time() - path.stat().st_mtime > _STALE_AGE_S
    except OSError:
        return False


def _remove_stale_temps(destination: Path) -> None:
    """Remove this target's temporary files whose writer process no longer exists."""
    prefix, suffix = _temp_parts(destination)
    for path in leftover_temp_files(destination):
        pid = _temp_pid(path.name, prefix, suffix)
        if pid is not None and _stale(path, pid):
            with contextlib.suppress(OSError):
                path.unlink()


_ANY_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}" + re.escape(TEMP_MARKER) + r"(?P<suffixes>.*)")


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove every temporary file in `folder` (of any target) whose writer is gone.

    For folders whose targets change name (epoch-numbered checkpoints), where the next
    write of the same target that would clean up may never come. Returns what it removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _ANY_TEMP.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        name_suffixes = Path(match["name"]).suffixes
        if match["suffixes"] not in ("".join(name_suffixes), "".join(name_suffixes[-1:])[:40]):
            continue  # not a name this module makes
        path = Path(entry.path)
        if _stale(path, int(match["pid"])):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's (or folder's) data to disk; silently skipped where the OS cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _resolve_target(destination: Path) -> Path:
    """A symlinked target is replaced where it points, so the link itself survives."""
    if destination.is_symlink():
        return Path(os.path.realpath(destination))
    return destination


@contextlib.contextmanager
def _atomic(destination: str | os.PathLike[str], synced: bool) -> Iterator[Path]:
    destination = _resolve_target(Path(destination))
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temp_parts(destination)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=suffix, dir=destination.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not synced:
            fsync_path(tmp)  # the data is on disk before the name points at it
        # mkstemp creates 0600 files; give the result the mode a plain open() would,
        # or keep the mode of the file being replaced.
        try:
            mode = destination.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_current_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, destination)
        fsync_path(destination.parent)  # and the rename itself survives a power cut
    finally:
        if tmp.exists():
            tmp.unlink()
    _remove_stale_temps(destination)


def atomic_path(destination: str | os.PathLike[str]) -> contextlib.AbstractContextManager[Path]:
    """Yield a temporary path beside `destination`; rename it into place on success.

    Write the new content to the yielded path (any writer: Keras, matplotlib, open()).
    On success it is fsynced and atomically renamed over `destination`; on any exception
    the temporary file is removed and `destination` is untouched.
    """
    return _atomic(destination, synced=False)


def write_bytes_atomic(destination: str | os.PathLike[str], data: bytes) -> None:
    """Replace `destination` with `data` in one step (old or new content, never a mix)."""
    with _atomic(destination, synced=True) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> None:
    """write_bytes_atomic for UTF-8 text."""
    write_bytes_atomic(destination, text.encode("utf-8"))
