"""Batch results on disk: the CSV/JSON serialisers and the per-folder resume state.

The formats are offered through the table in desktop.core.exporters. Exports and state
go through the atomic writers, so a crash while saving never leaves
a half-written file where a good one used to be. When the folder is labelled (its
sub-folders are named after the classes, see desktop.core.labelled), exports gain a
`true_label` column, last so readers of the usual columns are not disturbed, and
the JSON document an `accuracy` section. `unknown` (`true`/`false`) and `unknown_score`
are always there, empty (JSON null) for a model without an unknown score: one layout
for every model, so a script reading the columns by position works with both.

Names from strangers are written so nothing is lost and nothing runs:
- CSV: every data cell is quoted (a carriage return in a name cannot split its row), and a
  cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
  so a spreadsheet shows it as text instead of running it as a formula (OWASP's advice on
  CSV injection); a cell that begins with `'` gets one too, so removing one leading `'`
  from any cell that starts with it always gives the exact text back. A file name that is
  not valid UTF-8 is written as its own bytes, as a shell prints it.
- JSON must be valid UTF-8, so such a name's `path` shows each undecodable byte as U+FFFD
  and the exact bytes go in `path_base64` (only on those rows); other text (error, labels)
  gets U+FFFD alone. Reading a saved result back uses `path_base64`, so the resume state
  keeps the real file.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import isfinite
from pathlib import Path
from typing import Any

from convnet_common.atomic import write_text_atomic
from convnet_common.csv_cells import FORMULA_STARTS, quoted_writer, spreadsheet_cell  # noqa: F401  re-exported
from convnet_common.safe_json import JsonInputError, read_json
from convnet_common.utf8_text import as_utf8
from desktop.core.batch import BatchResult
from desktop.core.labelled import AccuracyTally, FolderLabels

CSV_COLUMNS = ("path", "label", "confidence", "top_k", "error", "unknown", "unknown_score")
TRUE_LABEL_COLUMN = "true_label"
STATE_VERSION = 1
# A resume-state file holds about 300 bytes per finished image: this is several hundred
# thousand images. A larger file is not one we wrote, and is ignored (start over).
MAX_STATE_BYTES = 128_000_000


def result_row(result: BatchResult, truth: FolderLabels | None = None) -> list[str]:
    """One CSV row, cells made safe by spreadsheet_cell: the error column is empty exactly
    when the label columns are filled.

    With `truth`, a last column holds the file's true class ('' outside class folders).
    """
    if result.error is not None:
        row = [str(result.path), "", "", "", result.error, "", ""]
    else:
        top_k = json.dumps([[name, round(p, 4)] for name, p in result.top_k])
        row = [str(result.path), result.label or "", f"{result.confidence:.4f}", top_k, ""]
        row += [unknown_text(result.unknown), f"{result.unknown_score:.6g}" if result.unknown_score is not None else ""]
    if truth is not None:
        row.append(truth.true_label(result.path) or "")
    return [spreadsheet_cell(cell) for cell in row]


def unknown_text(verdict: bool | None) -> str:
    """The `unknown` cell: `true`, `false`, or empty without a score."""
    return "" if verdict is None else "true" if verdict else "false"


def csv_rows(handle: Any, truth: FolderLabels | None = None) -> Callable[[BatchResult], None]:
    """Write the header (plain: its names are fixed) to `handle` now; return a function that
    writes one fully quoted row. The one CSV writer, for files, the Batch tab and stdout."""
    csv.writer(handle, lineterminator="\n").writerow(csv_columns(truth))
    writer = quoted_writer(handle)
    return lambda result: writer.writerow(result_row(result, truth))


def readable_text(text: str) -> str:
    """`text` as valid UTF-8: the bytes of a name that was not (surrogate escapes) become U+FFFD."""
    return as_utf8(text, "replace")


def _readable(value: Any) -> Any:
    """`value` with readable_text applied to every string in it, so json.dumps gives valid UTF-8."""
    if isinstance(value, str):
        return readable_text(value)
    if isinstance(value, dict):
        return {_readable(key): _readable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_readable(item) for item in value]
    return value


def result_to_dict(result: BatchResult, truth: FolderLabels | None = None) -> dict[str, Any]:
    """The saved form of one result, valid UTF-8 throughout; a path that is not valid
    UTF-8 also keeps its exact bytes in `path_base64` (see the module docstring)."""
    item: dict[str, Any] = {
        "path": str(result.path),
        "label": result.label,
        "confidence": result.confidence,
        "top_k": [[name, p] for name, p in result.top_k],
        "error": result.error,
        "unknown": result.unknown,
        "unknown_score": result.unknown_score,
    }
    if truth is not None:
        item[TRUE_LABEL_COLUMN] = truth.true_label(result.path)
    item = _readable(item)
    if item["path"] != str(result.path):
        item["path_base64"] = base64.b64encode(os.fsencode(result.path)).decode("ascii")
    return item


def _optional_text(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be text, got {type(value).__name__}")
    return value


def result_from_dict(data: dict[str, Any]) -> BatchResult:
    """A BatchResult from its saved form; TypeError/ValueError/KeyError if it is not one.

    The types are checked here because a saved label becomes a folder name when sorting.
    """
    path = data["path"]
    if not isinstance(path, str) or not path:
        raise TypeError("path must be non-empty text")
    if data.get("path_base64") is not None:
        try:
            path = os.fsdecode(base64.b64decode(data["path_base64"], validate=True))
        except (binascii.Error, TypeError, ValueError) as error:
            raise ValueError(f"path_base64 is not base64: {error}") from None
    top_k = tuple((_optional_text(name, "a top-k class") or "", float(p)) for name, p in data.get("top_k") or [])
    confidence = data.get("confidence")
    if isinstance(confidence, bool):
        raise TypeError("confidence must be a number")
    score, verdict = data.get("unknown_score"), data.get("unknown")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float)) or not isfinite(score)):
        raise TypeError("unknown_score must be a finite number")
    if verdict is not None and not isinstance(verdict, bool):
        raise TypeError("unknown must be true, false or null")
    return BatchResult(
        Path(path),
        _optional_text(data.get("label"), "label"),
        float(confidence) if confidence is not None else None,
        top_k,
        _optional_text(data.get("error"), "error"),
        float(score) if score is not None else None,
        verdict if score is not None else None,
    )


def csv_columns(truth: FolderLabels | None = None) -> tuple[str, ...]:
    return CSV_COLUMNS + ((TRUE_LABEL_COLUMN,) if truth is not None else ())


def results_to_csv(results: Iterable[BatchResult], truth: FolderLabels | None = None) -> str:
    buffer = io.StringIO()
    write_row = csv_rows(buffer, truth)
    for result in results:
        write_row(result)
    return buffer.getvalue()


def results_to_json(results: Iterable[BatchResult], model: str | None = None, truth: FolderLabels | None = None) -> str:
    results = list(results)
    items = [result_to_dict(result, truth) for result in results]
    document: dict[str, Any] = {
        "model": readable_text(model) if model is not None else None,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "count": len(items),
        "failed": sum(1 for item in items if item["error"] is not None),
    }
    if truth is not None:  # the accuracy of the rows exported, not of the whole run
        tally = AccuracyTally(truth)
        tally.add(results)
        document["accuracy"] = _readable(tally.to_dict())
    document["results"] = items
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


# --- resume state -----------------------------------------------------------------------


def model_key(model_path: str | os.PathLike[str]) -> str:
    """Identify a model file by path, size and mtime: a retrained file invalidates old progress."""
    path = Path(model_path).resolve()
    try:
        stat = path.stat()
        return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        return f"{path}|missing"


@dataclass
class BatchState:
    """Finished files of one folder with one model, so a cancelled run can resume.

    Only successful results count as finished; failed files are tried again next time.
    """

    folder: str
    model: str
    file: Path
    finished: dict[str, BatchResult] = field(default_factory=dict)

    @classmethod
    def state_file(cls, state_dir: str | os.PathLike[str], folder: str | os.PathLike[str], model: str) -> Path:
        digest = hashlib.sha256(f"{Path(folder).resolve()}\n{model}".encode()).hexdigest()[:24]
        return Path(state_dir) / f"batch-{digest}.json"

    @classmethod
    def load(
        cls, state_dir: str | os.PathLike[str], folder: str | os.PathLike[str], model_path: str | os.PathLike[str]
    ) -> BatchState:
        """The saved state for (folder, model), or an empty one if none or unreadable.

        Only successful results for files under `folder` are taken back: resumed rows can
        be sorted with "move", so a damaged state must never name a file elsewhere.
        """
        key = model_key(model_path)
        folder_text = str(Path(folder).resolve())
        state = cls(folder_text, key, cls.state_file(state_dir, folder, key))
        prefixes = tuple({os.path.join(folder_text, ""), os.path.join(os.path.abspath(folder), "")})
        try:
            data = read_json(state.file, MAX_STATE_BYTES, "batch state")
            if data.get("version") != STATE_VERSION or data.get("folder") != folder_text or data.get("model") != key:
                return state
            for item in data.get("finished", []):
                result = result_from_dict(item)
                inside = os.path.abspath(result.path).startswith(prefixes) and ".." not in result.path.parts
                if result.ok and result.label is not None and inside:
                    state.finished[str(result.path)] = result
        except (OSError, JsonInputError, ValueError, KeyError, TypeError, AttributeError):
            state.finished.clear()  # a missing or damaged state just means "start over"
        return state

    def add(self, results: Sequence[BatchResult]) -> None:
        for result in results:
            if result.ok:
                self.finished[str(result.path)] = result

    def save(self) -> None:
        data = {
            "version": STATE_VERSION,
            "folder": self.folder,
            "model": self.model,
            "finished": [result_to_dict(result) for result in self.finished.values()],
        }
        write_text_atomic(self.file, json.dumps(data, ensure_ascii=False))

    def clear(self) -> None:
        """Forget all progress (Start over) and remove the file."""
        self.finished.clear()
        try:
            self.file.unlink()
        except FileNotFoundError:
            pass
