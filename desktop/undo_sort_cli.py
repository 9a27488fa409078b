"""Undo a sort into folders from the shell: `convnet-undo-sort LOG|DEST`.

The Batch tab has Undo; a sort made by `convnet-classify --sort-into DEST --move`, or
one interrupted by a crash, needs the same from a terminal. Exit status: 0 every moved
file is back, 1 some could not be (one line each on stderr says why), 2 no log to read.
Paths in those lines go through convnet_common.terminal_text: the log names files from
anywhere, and a name's control characters must not reach the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from convnet_common.terminal_text import SafeArgumentParser, terminal_safe
from desktop.core.sorting import LOG_PREFIX, find_logs, undo_moves

PROG = "convnet-undo-sort"


def resolve_log(log_or_dest: Path) -> Path:
    """The log itself, or the newest sort log in a DEST folder."""
    if log_or_dest.is_dir():
        logs = find_logs(log_or_dest)
        if not logs:
            raise FileNotFoundError(f"no sort log ({LOG_PREFIX}*.jsonl) in {log_or_dest}")
        return logs[0]
    if not log_or_dest.is_file():
        raise FileNotFoundError(f"no such sort log: {log_or_dest}")
    return log_or_dest


def _say(line: str) -> None:
    """One line on stderr, names in it escaped so it stays one line (see the module docstring)."""
    print(terminal_safe(line), file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Move every file a sort moved back to where it came from; see the module docstring."""
    parser = SafeArgumentParser(prog=PROG, description="Undo the moves of a sort into folders, from its log.")
    parser.add_argument("log", metavar="LOG|DEST", help="a sort-log-*.jsonl file, or DEST for its newest log")
    args = parser.parse_args(argv)
    try:
        log_path = resolve_log(Path(args.log))
        report = undo_moves(log_path)
    except (OSError, UnicodeDecodeError) as error:
        _say(f"undo: error: {error}")
        return 2
    for path, reason in report.problems:
        _say(f"undo: {path}: {reason}")
    _say(f"moved {len(report.restored)} files back, {len(report.problems)} could not be; log {log_path}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
