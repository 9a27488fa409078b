"""Undo a sort into folders from the shell: `convnet-undo-sort DEST|LOG`.

The Batch tab has Undo; a sort made by `convnet-classify --sort-into DEST --move`, or
one interrupted by a crash, needs the same from a terminal. Given DEST it undoes every
sort into DEST not yet undone, newest first (a killed sort run again, or two sorts into
one DEST, leave one log each); given one LOG file, just that sort. It says per log and in
total exactly what it did: moved back, already at source, missing (each named), partial
copies removed, not undone (each named, with why). Exit status: 0 every moved file is
back, 1 some are not (missing or blocked), 2 no log to read. Paths go through
convnet_common.terminal_text: the log names files from anywhere, and a name's control
characters must not reach the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from convnet_common.terminal_text import SafeArgumentParser, terminal_safe
from desktop.core.sort_log import UndoReport, find_logs, pending_logs, undo_dest, undo_moves
from desktop.core.sorting import LOG_PREFIX

PROG = "convnet-undo-sort"


def _say(line: str) -> None:
    """One line on stderr, names in it escaped so it stays one line (see the module docstring)."""
    print(terminal_safe(line), file=sys.stderr, flush=True)


def _tell(report: UndoReport) -> None:
    for path, reason in report.problems:
        _say(f"undo: {path}: {reason}")
    _say(f"log {report.log_path}: {report.summary()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Undo the moves of the sorts named; see the module docstring."""
    parser = SafeArgumentParser(prog=PROG, description="Undo the moves of sorts into folders, from their logs.")
    parser.add_argument(
        "log", metavar="DEST|LOG", help="DEST: every sort into it not yet undone; or one sort-log-*.jsonl file"
    )
    args = parser.parse_args(argv)
    target = Path(args.log)
    try:
        if target.is_dir():
            if not find_logs(target):
                raise FileNotFoundError(f"no sort log ({LOG_PREFIX}*.jsonl) in {target}")
            if not pending_logs(target):
                _say(f"nothing to undo: every sort that moved files into {target} is already undone")
                return 0
            reports = undo_dest(target).logs
        elif target.is_file():
            reports = [undo_moves(target)]
        else:
            raise FileNotFoundError(f"no such sort log or folder: {target}")
    except (OSError, UnicodeDecodeError) as error:
        _say(f"undo: error: {error}")
        return 2
    for report in reports:
        _tell(report)
    if len(reports) == 1:
        return 1 if reports[0].problems else 0
    total = UndoReport()
    for report in reports:
        total.restored += report.restored
        total.problems += report.problems
        total.already_at_source += report.already_at_source
        total.missing += report.missing
        total.temps_removed += report.temps_removed
    _say(f"total over {len(reports)} sorts: {total.summary()}")
    return 1 if total.problems else 0


if __name__ == "__main__":
    sys.exit(main())
