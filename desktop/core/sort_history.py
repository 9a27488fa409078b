"""Which sorts went into a DEST folder, and which are undone: read from their logs.

Kept apart from desktop.core.sorting (which writes the logs) and desktop.core.sort_log
(which undoes them) so both, and a window asking at start-up whether Undo has work,
can read the same answer without importing each other.

A log is undone once it holds an "undo-complete" line (see desktop.core.sort_log); it
finished once it holds an "end" line (a sort killed half-way has none).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

LOG_PREFIX = "sort-log-"


@dataclass
class LogInfo:
    """What a log's lines say about its run: move or copy, when, and whether it was undone."""

    path: Path
    op: str | None = None
    started: str = ""
    finished: bool = False
    undone: bool = False


def read_info(log_path: Path) -> LogInfo:
    """The run entry, the end entry and the undo-complete marker of one log (torn lines skipped)."""
    info = LogInfo(log_path)
    with open(log_path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            event = entry.get("event")
            if event == "run":
                info.op, info.started = entry.get("op"), str(entry.get("started", ""))
            elif event == "end":
                info.finished = True
            elif event == "undo-complete":
                info.undone = True
    return info


def find_logs(dest: str | os.PathLike[str]) -> list[Path]:
    """Sort logs in `dest`, newest run first (by the run's start, then name; not mtime, which
    an undo changes)."""
    infos = []
    for path in Path(dest).glob(f"{LOG_PREFIX}*.jsonl"):
        try:
            infos.append(read_info(path))
        except (OSError, UnicodeDecodeError):
            infos.append(LogInfo(path))
    return [i.path for i in sorted(infos, key=lambda i: (i.started, i.path.name), reverse=True)]


def pending_logs(dest: str | os.PathLike[str]) -> list[Path]:
    """Logs in `dest` of sorts that moved files and are not yet undone, newest first."""
    pending = []
    for path in find_logs(dest):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            info = read_info(path)
            if info.op == "move" and not info.undone:
                pending.append(path)
    return pending


def undoable_log(dest: str | os.PathLike[str]) -> Path | None:
    """The newest not-yet-undone log of a sort into `dest` that moved files, or None."""
    try:
        logs = pending_logs(dest)
    except OSError:
        return None
    return logs[0] if logs else None


def sorted_folders(dest: Path) -> set[str]:
    """Names of DEST's sub-folders an earlier sort logged in DEST placed files into: a class
    the next run may never see is still a sorted folder, never new input."""
    folders: set[str] = set()
    with contextlib.suppress(OSError):
        for log in dest.glob(f"{LOG_PREFIX}*.jsonl"):
            with contextlib.suppress(OSError, UnicodeDecodeError), open(log, encoding="utf-8") as handle:
                for line in handle:
                    with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                        relative = Path(json.loads(line)["dst"]).relative_to(dest)
                        if len(relative.parts) > 1:
                            folders.add(relative.parts[0])
    return folders
