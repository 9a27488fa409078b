"""Reading sort logs and undoing their moves (desktop.core.sorting writes them).

Undo of a DEST folder undoes *every* sort into it not yet undone, newest first: a killed
sort that was run again, or two sorts into one DEST (each writes its own log), leave two
logs, and reading only the newest one used to report files "moved back" that were still
in DEST. A log is marked undone by one appended, fsynced "undo-complete" line once
every file it moved is back at its source or known to be gone; a torn marker line reads
as "not undone", and undoing again is harmless. Undo of one LOG path undoes just that log.

Each report says exactly what happened per log: moved back, already at source, missing
(not at its DEST place nor at its source: named, never counted as moved back), partial
copies removed, and what could not be undone and why.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# _transfer looks up its rename helpers in desktop.core.sorting at call time, so tests that
# patch them there (cross-device moves, counted steps) reach undo too.
from desktop.core import sort_lock
from desktop.core.sort_history import find_logs, pending_logs, undoable_log
from desktop.core.sorting import SortLog, _identical, _inside, _is_temp_of, _transfer

__all__ = [
    "DestUndoReport",
    "UndoReport",
    "count_moves",
    "find_logs",
    "pending_logs",
    "undo_dest",
    "undo_moves",
    "undoable_log",
]

NOT_FOUND = "not found at its destination or its source"


@dataclass
class UndoReport:
    """One log's undo. `restored`: (destination, source) moved back; `problems`: (path, reason)
    for everything not undone, the missing files included (also listed in `missing`)."""

    log_path: Path | None = None
    restored: list[tuple[Path, Path]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    already_at_source: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    temps_removed: int = 0

    @property
    def complete(self) -> bool:
        """Nothing more an undo could ever do: every problem is a file that is gone."""
        return len(self.problems) == len(self.missing)

    def summary(self) -> str:
        return (
            f"moved back {len(self.restored)}, already at source {len(self.already_at_source)}, "
            f"missing {len(self.missing)}, partial copies removed {self.temps_removed}, "
            f"not undone {len(self.problems) - len(self.missing)}"
        )


@dataclass
class DestUndoReport:
    """Undo of every pending sort in a DEST: one UndoReport per log, newest first."""

    dest: Path
    logs: list[UndoReport] = field(default_factory=list)

    def total(self) -> UndoReport:
        total = UndoReport()
        for report in self.logs:
            total.restored += report.restored
            total.problems += report.problems
            total.already_at_source += report.already_at_source
            total.missing += report.missing
            total.temps_removed += report.temps_removed
        return total


def _read_log(log_path: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
    """Last known state of every move in the log, keyed by (src, dst), in log order; and the
    temporary files of copies that never finished (what a killed sort or undo leaves)."""
    moves: dict[tuple[str, str], dict[str, Any]] = {}
    undo_temps: dict[tuple[str, str], str] = {}
    with open(log_path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: the line before it still holds
            if not isinstance(entry, dict) or "src" not in entry or "dst" not in entry:
                continue
            key = (entry["src"], entry["dst"])
            if entry.get("op") in ("undo-move", "copy"):
                if entry.get("event") == "begin" and entry.get("tmp") and _is_temp_of(entry["tmp"], entry["dst"]):
                    undo_temps[key] = entry["tmp"]
                elif entry.get("event") in ("done", "failed"):
                    undo_temps.pop(key, None)
                continue
            if entry.get("op") != "move":
                continue
            state = moves.setdefault(key, {"tmp": None, "event": None})
            state["event"] = entry.get("event")
            if entry.get("tmp") and _is_temp_of(entry["tmp"], entry["dst"]):
                state["tmp"] = entry["tmp"]
    return moves, list(undo_temps.values())


def _undo_one(src: Path, dst: Path, tmp: str | None, log: SortLog, report: UndoReport) -> None:
    if tmp and os.path.lexists(tmp):
        os.unlink(tmp)  # an unfinished cross-device copy; the source is intact
        report.temps_removed += 1
    if not os.path.lexists(dst):
        if os.path.lexists(src):
            report.already_at_source.append(src)  # the move never happened
        else:
            report.missing.append(dst)
            report.problems.append((dst, NOT_FOUND))
        return
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
    _transfer(dst, src, True, log, op="undo-move")
    log.write(event="undone", op="move", src=str(src), dst=str(dst))
    report.restored.append((dst, src))


def undo_moves(log_path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> UndoReport:
    """Move every file one sort log moved back to where it came from, newest first.

    A file whose original path is now taken, or that is no longer at its destination,
    is reported and left alone. Running undo twice is harmless: undone moves are logged,
    and once nothing more can be done the log is marked undone (see module docstring).
    The log is not trusted further than its folder: only files inside the log's own
    folder (the sort's DEST) are moved back, and only temporary names are deleted.
    """
    log_path = Path(log_path)
    with sort_lock.undoing(log_path.parent):
        return _undo_moves_locked(log_path, progress)


def _undo_moves_locked(log_path: Path, progress: Callable[[int, int], None] | None) -> UndoReport:
    states, undo_temps = _read_log(log_path)
    report = UndoReport(log_path)
    moves = []
    for key, state in states.items():
        if state["event"] in ("undone", "failed"):  # "failed": that attempt moved nothing
            continue
        if _inside(key[1], log_path.parent):
            moves.append((key, state))
        else:
            report.problems.append((Path(key[1]), f"not inside the sorted folder {log_path.parent}; left alone"))
    for tmp in undo_temps:  # a killed copy's partial file: the file it copied is still whole
        with contextlib.suppress(OSError):
            os.unlink(tmp)
            report.temps_removed += 1
    log = SortLog(log_path)
    try:
        for done, ((src_text, dst_text), state) in enumerate(reversed(moves), start=1):
            try:
                _undo_one(Path(src_text), Path(dst_text), state["tmp"], log, report)
            except OSError as error:
                report.problems.append((Path(dst_text), error.strerror or str(error)))
            if progress is not None:
                progress(done, len(moves))
        if report.complete:
            log.write(
                event="undo-complete",
                at=datetime.now().isoformat(),
                **{"moved back": len(report.restored), "missing": len(report.missing)},
            )
    finally:
        log.close()
    return report


def undo_dest(dest: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> DestUndoReport:
    """Undo every sort into `dest` that moved files and is not yet undone, newest first.

    Newest first because a later sort may have moved a file an earlier one placed: undoing
    in reverse walks each file back along its own path.
    """
    report = DestUndoReport(Path(dest))
    with sort_lock.undoing(dest):
        logs = pending_logs(dest)
        for number, log in enumerate(logs):

            def step(done: int, total: int, number: int = number) -> None:
                if progress is not None:  # one bar for all logs: each log a thousandth share per file
                    progress(number * 1000 + done * 1000 // max(1, total), len(logs) * 1000)

            report.logs.append(_undo_moves_locked(Path(log), step))
    return report


def count_moves(log_path: Path) -> int:
    """How many files a log shows moved and not yet moved back (for a confirmation dialog)."""
    states, _ = _read_log(log_path)
    return sum(1 for state in states.values() if state["event"] == "done")
