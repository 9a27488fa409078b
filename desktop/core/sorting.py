"""Sort classified images into DEST/<class>/ folders, with a log that makes moves undoable.

Safety rules: nothing is ever overwritten (clashes get "name (1).jpg"); every step is
logged (flushed and fsynced) *before* it happens and again when it is done, so after a
crash the log still names every file; a move is either a same-filesystem rename (the
file is at its source or at its destination, never neither) or, across filesystems, a
copy to a temporary name beside the destination, fsync, rename into place, and only
then removal of the source.
"""

from __future__ import annotations

import errno
import filecmp
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop.core.batch import BatchResult

UNSURE_DIR = "_unsure"
LOG_PREFIX = "sort-log-"
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_folder_name(label: str) -> str:
    """A class name usable as one folder name on any OS: no separators, no '..', not reserved."""
    name = _BAD_CHARS.sub("_", label).strip().strip(".").strip()[:100]
    if not name:
        return "_unnamed"
    if name.lower() in _RESERVED or name.lower() == UNSURE_DIR:
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


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rename_no_replace(src: Path, dst: Path) -> None:
    """Rename within one filesystem, failing with FileExistsError instead of overwriting."""
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


def _identical(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


class SortLog:
    """An append-only JSON-lines log; each line is flushed and fsynced before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, **entry: Any) -> None:
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def _transfer(src: Path, dst: Path, move: bool, log: SortLog, op: str | None = None, **extra: Any) -> None:
    """Copy or move one file to a free `dst`, logging before and after (see module docstring)."""
    same_device = move and _same_device(src, dst.parent)
    tmp = None if same_device else _temp_name(dst)
    op = op or ("move" if move else "copy")
    log.write(event="begin", op=op, src=str(src), dst=str(dst),
              tmp=str(tmp) if tmp else None, **extra)
    if tmp is None:
        _rename_no_replace(src, dst)
    else:
        try:
            _copy_to_temp(src, tmp)
            _rename_no_replace(tmp, dst)
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(dst.parent)
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


def _new_log_path(dest: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return free_name(dest, f"{LOG_PREFIX}{stamp}.jsonl")


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

    Failed results are skipped. One file that cannot be placed is reported and the run goes on.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    items = list(results)
    report = SortReport(_new_log_path(dest))
    log = SortLog(report.log_path)
    taken: dict[Path, set[str]] = {}
    try:
        log.write(event="run", dest=str(dest), op="move" if move else "copy", threshold=threshold,
                  started=datetime.now().isoformat(timespec="seconds"))
        for done, result in enumerate(items, start=1):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            if not result.ok or result.label is None:
                report.skipped_errors += 1
            else:
                unsure = (result.confidence or 0.0) < threshold
                folder = dest / (UNSURE_DIR if unsure else safe_folder_name(result.label))
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    target = free_name(folder, result.path.name, taken.setdefault(folder, set()))
                    _transfer(result.path, target, move, log, label=result.label, confidence=result.confidence)
                    report.placed.append((result.path, target))
                except OSError as error:
                    reason = error.strerror or str(error)
                    log.write(event="failed", src=str(result.path), error=reason)
                    report.failed.append((result.path, reason))
            if progress is not None:
                progress(done, len(items))
    finally:
        log.close()
    return report


def find_logs(dest: str | os.PathLike[str]) -> list[Path]:
    """Sort logs in `dest`, newest first."""
    return sorted(Path(dest).glob(f"{LOG_PREFIX}*.jsonl"), key=lambda p: p.stat().st_mtime_ns, reverse=True)


@dataclass
class UndoReport:
    """(destination, source) pairs moved back, and (path, reason) for what could not be undone."""

    restored: list[tuple[Path, Path]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def _read_log(log_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Last known state of every move in the log, keyed by (src, dst), in log order."""
    moves: dict[tuple[str, str], dict[str, Any]] = {}
    with open(log_path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: the line before it still holds
            if not isinstance(entry, dict) or entry.get("op") != "move" or "src" not in entry or "dst" not in entry:
                continue
            key = (entry["src"], entry["dst"])
            state = moves.setdefault(key, {"tmp": None, "event": None})
            state["event"] = entry.get("event")
            if entry.get("tmp"):
                state["tmp"] = entry["tmp"]
    return moves


def _undo_one(src: Path, dst: Path, tmp: str | None, log: SortLog, report: UndoReport) -> None:
    if tmp and os.path.lexists(tmp):
        os.unlink(tmp)  # an unfinished cross-device copy; the source is intact
    if not os.path.lexists(dst):
        if not os.path.lexists(src):
            report.problems.append((dst, "not found at its destination or its source"))
        return  # the move never happened: the file is still at its source
    if os.path.lexists(src):
        if _identical(src, dst):  # interrupted half-way: the source is the original
            os.unlink(dst)
            log.write(event="undone", op="move", src=str(src), dst=str(dst))
            report.restored.append((dst, src))
        else:
            report.problems.append((dst, f"the original path is taken by another file: {src}"))
        return
    src.parent.mkdir(parents=True, exist_ok=True)
    log.write(event="undo-begin", op="undo", src=str(src), dst=str(dst))
    if _same_device(dst, src.parent):
        _rename_no_replace(dst, src)
    else:
        _transfer(dst, src, True, log, op="undo-move")
    log.write(event="undone", op="move", src=str(src), dst=str(dst))
    report.restored.append((dst, src))


def undo_moves(
    log_path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None
) -> UndoReport:
    """Move every file a sort moved back to where it came from, newest first.

    A file whose original path is now taken, or that is no longer at its destination,
    is reported and left alone. Running undo twice is harmless: undone moves are logged.
    """
    log_path = Path(log_path)
    moves = [(key, state) for key, state in _read_log(log_path).items() if state["event"] != "undone"]
    report = UndoReport()
    log = SortLog(log_path)
    try:
        for done, ((src_text, dst_text), state) in enumerate(reversed(moves), start=1):
            try:
                _undo_one(Path(src_text), Path(dst_text), state["tmp"], log, report)
            except OSError as error:
                report.problems.append((Path(dst_text), error.strerror or str(error)))
            if progress is not None:
                progress(done, len(moves))
    finally:
        log.close()
    return report
