"""Sort classified images into DEST/<class>/ folders, with a log that makes moves undoable.

Safety rules: nothing is ever overwritten (clashes get "name (1).jpg"); every step is
logged (flushed and fsynced) *before* it happens and again when it is done, so after a
crash the log still names every file; a move is either a same-filesystem rename (on
Linux one renameat2(RENAME_NOREPLACE) step: the file is at its source or at its
destination at every instant) or, across filesystems, a copy to a temporary name beside
the destination, fsync, rename into place, and only then removal of the source (a crash
in between leaves the one file in flight at both places, never at neither).

Undo lives in desktop.core.sort_log (the Batch tab, or `convnet-undo-sort LOG|DEST`): it
reads the logs, puts every moved file back, finishes or rolls back a move a crash
interrupted, and removes the partial copies a killed sort or undo left. Every run writes
its own log (time, pid and a random token in the name, created exclusively), so two sorts
into one DEST, or a killed sort run again, never share or lose a log.

A DEST that is, contains or lies inside the source folder: files already in DEST's class
folders (or _unsure, _unknown) are never taken as new input, so a second run leaves them alone
instead of renaming each to "name (1).png".
"""

from __future__ import annotations

import ctypes
import errno
import filecmp
import json
import os
import re
import secrets
import shutil
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from convnet_common.atomic import fsync_path
from desktop.core import sort_lock
from desktop.core.batch import BatchResult
from desktop.core.sort_history import LOG_PREFIX, find_logs, sorted_folders, undoable_log

__all__ = [
    "LOG_PREFIX",
    "UNKNOWN_DIR",
    "UNSURE_DIR",
    "SortLog",
    "SortReport",
    "find_logs",
    "free_name",
    "safe_folder_name",
    "sort_into_folders",
    "undoable_log",
]  # the log readers live in sort_history; undo in sort_log

UNSURE_DIR = "_unsure"
# Images the model calls unknown (its unknown score over the threshold): not any of its
# classes, so not in a class folder and not merely unsure either. Unknown wins over unsure.
UNKNOWN_DIR = "_unknown"
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_folder_name(label: str) -> str:
    """A class name usable as one folder name on any OS: no separators, no '..', not reserved."""
    name = _BAD_CHARS.sub("_", label).strip().strip(".").strip()[:100]
    if not name:
        return "_unnamed"
    if name.lower() in _RESERVED or name.lower() in (UNSURE_DIR, UNKNOWN_DIR):
        return f"{name}_"
    return name


def _candidate(name: str, number: int) -> str:
    if number == 0:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({number})"
    return f"{stem} ({number}).{suffix}"


def free_name(folder: Path, name: str, taken: set[str] | None = None) -> Path:
    """The first of name, "name (1).ext", "name (2).ext", ... that is free in `folder`."""
    number = 0
    while True:
        candidate = _candidate(name, number)
        if not os.path.lexists(folder / candidate) and (taken is None or candidate not in taken):
            if taken is not None:
                taken.add(candidate)
            return folder / candidate
        number += 1


def _load_renameat2() -> Callable[[str, str], None] | None:
    """Linux's renameat2(RENAME_NOREPLACE): one atomic step that never overwrites."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int

    def rename(src: str, dst: str) -> None:
        if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), src, None, dst)

    return rename


_AT_FDCWD, _RENAME_NOREPLACE = -100, 1
_renameat2 = _load_renameat2()


def _rename_no_replace(src: Path, dst: Path) -> None:
    """Rename within one filesystem, failing with FileExistsError instead of overwriting.

    With renameat2 the file is at `src` or at `dst` at every instant. Elsewhere it is
    hard-linked to `dst` and then unlinked from `src`; a crash between the two leaves
    both names on one file, which undo recognises (same inode) and resolves.
    """
    if _renameat2 is not None:
        try:
            _renameat2(str(src), str(dst))
            return
        except OSError as error:
            if error.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
                raise  # EEXIST arrives as FileExistsError, EXDEV as itself
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise
        if os.path.lexists(dst):  # a filesystem without hard links: check, then rename
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def _same_device(src: Path, dst_folder: Path) -> bool:
    try:
        return os.stat(src).st_dev == os.stat(dst_folder).st_dev
    except OSError:
        return False


def _copy_to_temp(src: Path, tmp: Path) -> None:
    with open(src, "rb") as reader, open(tmp, "xb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(src, tmp)


def _temp_name(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{os.getpid()}.partial")


def _is_temp_of(tmp: str, target: str) -> bool:
    """Whether `tmp` is a name _temp_name gives `target`: a log only ever deletes those."""
    tmp_path, target_path = Path(tmp), Path(target)
    return (
        tmp_path.parent == target_path.parent
        and re.fullmatch(rf"\.{re.escape(target_path.name)}\.\d+\.partial", tmp_path.name) is not None
    )


def _inside(path: str, folder: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:  # different drives
        return False


def _identical(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class SortLog:
    """An append-only JSON-lines log; each line is flushed and fsynced before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")
        if self._handle.tell() == 0:
            fsync_path(path.parent)  # the log's own name survives a power cut
        elif not _ends_with_newline(path):
            self._handle.write("\n")  # end a line torn by a crash, so the next entry stays whole

    def write(self, **entry: Any) -> None:
        """A name that is not valid UTF-8 is written as \\udcNN escapes (an ASCII line that
        Python's json reads back to the exact bytes), so such a file sorts and undoes too."""
        line = json.dumps(entry, ensure_ascii=False)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            line = json.dumps(entry)
        self._handle.write(line + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def _transfer(src: Path, dst: Path, move: bool, log: SortLog, op: str | None = None, **extra: Any) -> None:
    """Copy or move one file to a free `dst`, logging before and after (see module docstring)."""
    op = op or ("move" if move else "copy")
    renamed = False
    if move and _same_device(src, dst.parent):
        log.write(event="begin", op=op, src=str(src), dst=str(dst), tmp=None, **extra)
        try:
            _rename_no_replace(src, dst)
            renamed = True
        except OSError as error:
            if error.errno != errno.EXDEV:  # e.g. overlay filesystems: copy instead
                raise
    if not renamed:
        tmp = _temp_name(dst)
        log.write(event="begin", op=op, src=str(src), dst=str(dst), tmp=str(tmp), **extra)
        try:
            _copy_to_temp(src, tmp)
            _rename_no_replace(tmp, dst)
        finally:
            if tmp.exists():
                tmp.unlink()
        fsync_path(dst.parent)
        if move:
            src.unlink()
    log.write(event="done", op=op, src=str(src), dst=str(dst))


@dataclass
class SortReport:
    """What a sort did: (source, destination) pairs placed, (source, reason) failures, the log."""

    log_path: Path
    placed: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped_errors: int = 0
    cancelled: bool = False
    in_place: list[Path] = field(default_factory=list)  # already in their right DEST/<class>/
    left_in_dest: list[Path] = field(default_factory=list)  # in another DEST folder: not new input


def _new_log_path(dest: Path) -> Path:
    """A log name no other run can have: two sorts into one DEST (concurrent, or a killed one
    run again in the same second) each keep their own log, so undo finds both. Created
    exclusively here; SortLog then appends to it."""
    while True:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = dest / f"{LOG_PREFIX}{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        return path


def _already_sorted(path: Path, dest: Path, folders: set[str]) -> bool:
    """Whether `path` lies in one of DEST's sorted folders: never new input (see module docstring)."""
    try:
        relative = Path(os.path.abspath(path)).relative_to(dest)
    except ValueError:
        return False
    return len(relative.parts) > 1 and relative.parts[0] in folders


def sort_into_folders(
    results: Iterable[BatchResult],
    dest: str | os.PathLike[str],
    *,
    threshold: float = 0.0,
    move: bool = False,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SortReport:
    """Copy (or move) each classified image into DEST/<class>/, or DEST/_unsure/ below `threshold`.

    An image the model calls unknown (`result.unknown`) goes to DEST/_unknown/ whatever its
    confidence: it is unlike every class, which is more than being unsure between them.

    Failed results are skipped. One file that cannot be placed is reported and the run goes on.
    Files already in DEST's sorted folders are left where they are (report.in_place when in
    their right folder, report.left_in_dest otherwise): a DEST inside the source folder, or a
    sort run twice, must not rename them to "name (1).png" or re-sort its own output.
    """
    dest = Path(os.path.abspath(dest))  # the log names absolute paths: undo works from anywhere
    dest.mkdir(parents=True, exist_ok=True)
    items = list(results)
    folders = {
        UNSURE_DIR,
        UNKNOWN_DIR,
        *sorted_folders(dest),
        *(safe_folder_name(r.label) for r in items if r.ok and r.label is not None),
    }
    with sort_lock.sorting(dest):
        return _sort_locked(items, dest, folders, threshold, move, cancel, progress)


def _sort_locked(
    items: list[BatchResult],
    dest: Path,
    folders: set[str],
    threshold: float,
    move: bool,
    cancel: threading.Event | None,
    progress: Callable[[int, int], None] | None,
) -> SortReport:
    """sort_into_folders' work, under the DEST lock that keeps undo out while it runs."""
    report = SortReport(_new_log_path(dest))
    log = SortLog(report.log_path)
    taken: dict[Path, set[str]] = {}
    try:
        log.write(
            event="run",
            dest=str(dest),
            op="move" if move else "copy",
            threshold=threshold,
            started=datetime.now().isoformat(timespec="seconds"),
        )
        for done, result in enumerate(items, start=1):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            if not result.ok or result.label is None:
                report.skipped_errors += 1
            else:
                unsure = (result.confidence or 0.0) < threshold
                name = UNKNOWN_DIR if result.unknown else UNSURE_DIR if unsure else safe_folder_name(result.label)
                folder = dest / name
                source = Path(os.path.abspath(result.path))
                if _already_sorted(source, dest, folders):
                    in_place = source.parent == folder
                    (report.in_place if in_place else report.left_in_dest).append(result.path)
                    log.write(event="left", src=str(source), reason="in place" if in_place else "already in DEST")
                    if progress is not None:
                        progress(done, len(items))
                    continue
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    for _attempt in range(100):  # another sort into DEST may take a name first
                        target = free_name(folder, result.path.name, taken.setdefault(folder, set()))
                        try:
                            _transfer(source, target, move, log, label=result.label, confidence=result.confidence)
                            break
                        except FileExistsError:  # logged, so undo knows this attempt moved nothing
                            log.write(
                                event="failed",
                                op="move" if move else "copy",
                                src=str(source),
                                dst=str(target),
                                error="name taken; trying the next",
                            )
                    else:
                        raise FileExistsError(errno.EEXIST, "no free name", str(folder / result.path.name))
                    report.placed.append((result.path, target))
                except (OSError, UnicodeError) as error:  # one file's problem, not the run's
                    reason = getattr(error, "strerror", None) or str(error)
                    log.write(event="failed", src=str(result.path), error=reason)
                    report.failed.append((result.path, reason))
            if progress is not None:
                progress(done, len(items))
        log.write(event="end", cancelled=report.cancelled, finished=datetime.now().isoformat())
    finally:
        log.close()
    return report
