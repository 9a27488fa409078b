"""One rule for every CSV cell the project writes: the app's batch results and training's
predictions.csv.

A file or class name is a stranger's text. In a cell that opens with `=`, `+`, `-`, `@`,
a tab or a carriage return, a spreadsheet runs it as a formula (OWASP, "CSV Injection"),
so such a cell gets a leading `'`; a cell that already opens with `'` gets one too, so the
neutralising quote can always be told apart and removed. Rows are written fully quoted:
Python's csv writer leaves a lone `\\r` unquoted when the line terminator is `\\n`, and a
reader then splits the row there.
"""

from __future__ import annotations

import csv
from typing import Any

# Cell openings a spreadsheet treats as a formula, and the quote itself (see above).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_cell(text: str) -> str:
    """`text` with a leading `'` when a spreadsheet would otherwise run it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def quoted_writer(handle: Any):
    """A csv writer for rows of neutralised cells: every cell quoted, rows end in `\\n`."""
    return csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
