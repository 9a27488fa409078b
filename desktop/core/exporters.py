"""The one table of result formats: `convnet-classify`, the Batch tab's buttons and its menu read it.

A new format is one `Exporter` in EXPORTERS (and its serialiser in results_io): the CLI
gains `--KIND OUT`, the Batch tab an "Export KIND…" button and a Batch-menu entry, with
the same columns everywhere. For a labelled folder every format carries each file's
`true_label` (see results_io), from the CLI as from the app.

`render` gives the whole file (written atomically by `write`). A format that can be
written a row at a time also has `stream`, which the CLI uses so a long run's rows reach
the file (or stdout) as they are produced and not all at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from convnet_common.atomic import write_bytes_atomic
from desktop.core.batch import BatchResult
from desktop.core.labelled import FolderLabels
from desktop.core.results_io import csv_rows, results_to_csv, results_to_json

RowSink = Callable[[BatchResult], None]


@dataclass(frozen=True)
class ExportContext:
    """What a format may record besides the rows: the model file, and the folder's classes if labelled."""

    model: str | None = None
    truth: FolderLabels | None = None


@dataclass(frozen=True)
class Exporter:
    kind: str  # the CLI option (--csv), the file suffix and the key callers pass around
    name: str  # "CSV", as buttons and dialogs say it
    menu_text: str  # its Batch-menu entry, with a mnemonic unique in that menu
    shortcut: str
    cli_help: str
    render: Callable[[list[BatchResult], ExportContext], str]
    stream: Callable[[TextIO, ExportContext], RowSink] | None = None

    @property
    def file_filter(self) -> str:
        return f"{self.name} files (*.{self.kind})"

    @property
    def button_text(self) -> str:
        return f"Export {self.name}…"

    def write(self, path: str | os.PathLike[str], results: Iterable[BatchResult], context: ExportContext) -> None:
        """The whole file, atomically: a crash never leaves half of it where a good one was.

        A file name that is not valid UTF-8 goes into the CSV as its own bytes
        (surrogateescape), as the CLI streams it, instead of failing the whole export.
        """
        write_bytes_atomic(path, self.render(list(results), context).encode("utf-8", "surrogateescape"))


def csv_stream(handle: TextIO, context: ExportContext) -> RowSink:
    """Write the header now and return a function that writes one row (results_io.csv_rows:
    the same quoting and formula neutralising as results_to_csv)."""
    return csv_rows(handle, context.truth)


CSV = Exporter(
    "csv",
    "CSV",
    "&Export results as CSV…",
    "Ctrl+Shift+E",
    "write the CSV to this file instead of stdout",
    lambda results, context: results_to_csv(results, context.truth),
    csv_stream,
)
JSON = Exporter(
    "json",
    "JSON",
    "Export results as &JSON…",
    "Ctrl+Shift+J",
    "also write the results as a JSON document to this file",
    lambda results, context: results_to_json(results, context.model, context.truth),
)
EXPORTERS: tuple[Exporter, ...] = (CSV, JSON)
STDOUT_FORMAT = CSV  # what convnet-classify prints when no output file is named


def exporter(kind: str) -> Exporter:
    """The format called `kind` ('csv', 'json'); KeyError for an unknown one."""
    for candidate in EXPORTERS:
        if candidate.kind == kind:
            return candidate
    raise KeyError(kind)
