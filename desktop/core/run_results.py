"""A finished run's validation report, read back for the Train tab's results, and two runs compared.

Training writes RUN_DIR/report/ when a run ends (training/evaluate.py, training/reports.py):
metrics.json (accuracy, per-class precision/recall/F1/support, the confusion matrix with
rows = true class and columns = predicted class, in `labels` order) and predictions.csv
(one row per validation image: path, true, predicted, confidence, correct, top_k). The app
may not import training, and these files were written by another process (possibly
killed, an older version, or edited by hand), so everything here is read defensively:
size and row caps, each bad CSV row skipped and counted, never an exception for a bad file.

predictions.csv cells follow convnet_common/csv_cells.py: a cell that opened with a
formula character or a `'` got one leading `'` so a spreadsheet shows it as text. So a
cell that starts with `'` always had one added: removing exactly one gives the real path
or class name back (`real_cell`). metrics.json has no per-image rows and split.json has
paths but no predictions, so the CSV is the only source of the images behind each cell;
its class names are checked against metrics.json's labels (a row naming an unknown
class is a bad row).

A run's exported models (names, agreement check) are desktop.core.run_export's.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convnet_common.csv_cells import FORMULA_STARTS
from convnet_common.run_layout import RunFolder
from desktop.core.run_history import finite, read_metrics, whole

PREDICTIONS = "predictions.csv"
COLUMNS = ("path", "true", "predicted", "confidence", "correct", "top_k")
MAX_PREDICTIONS_BYTES = 64_000_000  # ~300 bytes a row: 200,000 validation images
MAX_PREDICTION_ROWS = 200_000
MAX_LINE_CHARS = 100_000  # a row is a path, two names and a short JSON list
MAX_CLASSES = 10_000


@dataclass(frozen=True)
class ClassScore:
    """One class's precision, recall and F1 (None: not defined, e.g. never predicted) and images."""

    name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int


@dataclass(frozen=True)
class ImagePrediction:
    """One row of predictions.csv, with the real path and class names (neutralising undone)."""

    path: str
    true: str
    predicted: str
    confidence: float
    correct: bool
    top_k: tuple[tuple[str, float], ...] = ()


@dataclass
class RunResults:
    """What a run's report says. `matrix[i][j]`: images of class labels[i] predicted as labels[j].

    `notes` says in words what could not be read (missing files, rows skipped, caps hit);
    the results are still usable with what was read.
    """

    run_dir: Path
    labels: list[str]
    accuracy: float | None
    images: int
    per_class: list[ClassScore]
    matrix: list[list[int]]
    predictions: list[ImagePrediction] = field(default_factory=list)
    macro_f1: float | None = None
    bad_rows: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def cell_images(self, true: str, predicted: str) -> list[ImagePrediction]:
        """The images of class `true` predicted as `predicted`, most confident first."""
        rows = [p for p in self.predictions if p.true == true and p.predicted == predicted]
        return sorted(rows, key=lambda p: -p.confidence)

    @property
    def misclassified(self) -> list[ImagePrediction]:
        """Every wrong prediction, most confidently wrong first (the likeliest label mistakes)."""
        return sorted((p for p in self.predictions if not p.correct), key=lambda p: -p.confidence)

    def score(self, name: str) -> ClassScore | None:
        return next((s for s in self.per_class if s.name == name), None)


def real_cell(text: str) -> str:
    """A CSV cell's real text: one leading `'` removed (see the module docstring)."""
    return text[1:] if text.startswith("'") else text


def neutralised(text: str) -> bool:
    """Whether csv_cells would have added a quote to `text` (for tests and round trips)."""
    return text.startswith(FORMULA_STARTS)


# --------------------------------------------------------------------------- reading


def _labels(metrics: dict) -> list[str]:
    labels = metrics.get("labels")
    if isinstance(labels, list) and 0 < len(labels) <= MAX_CLASSES and all(isinstance(x, str) for x in labels):
        return list(labels)
    return []


def _unit(value: Any) -> float | None:
    number = finite(value)
    return number if number is not None and 0.0 <= number <= 1.0 else None


def _per_class(metrics: dict, labels: list[str]) -> list[ClassScore]:
    rows = metrics.get("per_class")
    found: dict[str, ClassScore] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("name"), str) and row["name"] in labels:
            support = whole(row.get("support"))
            found[row["name"]] = ClassScore(
                row["name"],
                _unit(row.get("precision")),
                _unit(row.get("recall")),
                _unit(row.get("f1")),
                support if support is not None and support >= 0 else 0,
            )
    return [found[name] for name in labels if name in found]


def _matrix(metrics: dict, size: int) -> list[list[int]] | None:
    matrix = metrics.get("confusion_matrix")
    if not isinstance(matrix, list) or len(matrix) != size:
        return None
    rows = []
    for row in matrix:
        if not isinstance(row, list) or len(row) != size:
            return None
        counts = [whole(v) for v in row]
        if any(c is None or c < 0 for c in counts):
            return None
        rows.append(counts)
    return rows


def _lines(handle, max_bytes: int) -> Iterator[str]:
    """The file's lines, each cut at MAX_LINE_CHARS, until about `max_bytes` have been read."""
    read = 0
    while read < max_bytes:
        line = handle.readline(MAX_LINE_CHARS)
        if not line:
            return
        read += len(line)
        yield line
    if handle.read(1):
        raise _Truncated


class _Truncated(Exception):
    pass


def _top_k(cell: str, labels: set[str]) -> tuple[tuple[str, float], ...]:
    try:
        items = json.loads(cell)
    except ValueError:
        return ()
    pairs = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("label") in labels and _unit(item.get("probability")) is not None:
            pairs.append((item["label"], float(item["probability"])))
    return tuple(pairs[:20])


def _row(cells: list[str], labels: set[str]) -> ImagePrediction | None:
    if len(cells) != len(COLUMNS):
        return None
    path, true, predicted, confidence, correct, top_k = (real_cell(c) for c in cells)
    try:
        number = float(confidence)
    except ValueError:
        return None
    if not path or not math.isfinite(number) or not 0.0 <= number <= 1.0 or correct not in ("true", "false"):
        return None
    if labels and (true not in labels or predicted not in labels):
        return None
    if (correct == "true") != (true == predicted):
        return None
    return ImagePrediction(path, true, predicted, number, correct == "true", _top_k(top_k, labels))


def read_predictions(
    path: str | os.PathLike[str], labels: list[str] | None = None, max_bytes: int | None = None
) -> tuple[list[ImagePrediction], int, bool]:
    """(rows, bad rows skipped, truncated) from a predictions.csv; OSError if it cannot be opened.

    Reading stops after MAX_PREDICTION_ROWS rows or `max_bytes` (MAX_PREDICTIONS_BYTES)
    and says so (truncated). A header other than training's is one bad row, and the rows
    are still tried by position.
    """
    limit = MAX_PREDICTIONS_BYTES if max_bytes is None else max_bytes
    known = set(labels or ())
    rows: list[ImagePrediction] = []
    bad, truncated = 0, False
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(_lines(handle, limit))
        first = True
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except _Truncated:
                truncated = True
                break
            except csv.Error:
                bad += 1
                continue
            if first:
                first = False
                if [c.strip() for c in cells] == list(COLUMNS):
                    continue
                bad += 1
                continue
            if not cells:
                continue
            if len(rows) >= MAX_PREDICTION_ROWS:
                truncated = True
                break
            row = _row(cells, known)
            if row is None:
                bad += 1
            else:
                rows.append(row)
    return rows, bad, truncated


def _scores_from_rows(labels: list[str], matrix: list[list[int]]) -> list[ClassScore]:
    """Per-class scores from the matrix, when metrics.json gives none (precision None when never predicted)."""
    scores = []
    for i, name in enumerate(labels):
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        hit = matrix[i][i]
        precision = hit / predicted if predicted else None
        recall = hit / support if support else None
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(ClassScore(name, precision, recall, f1, support))
    return scores


def read_run_results(run_dir: str | os.PathLike[str]) -> RunResults | None:
    """The run's report as RunResults, or None when it has neither metrics.json nor predictions.csv."""
    run_dir = Path(run_dir)
    report = RunFolder(run_dir).report
    metrics = read_metrics(run_dir)
    notes: list[str] = []
    labels = _labels(metrics) if metrics else []
    if metrics is None and (report / "metrics.json").exists():
        notes.append("metrics.json could not be read (too large or not a report); figures come from predictions.csv")
    predictions: list[ImagePrediction] = []
    bad, truncated = 0, False
    csv_path = report / PREDICTIONS
    try:
        predictions, bad, truncated = read_predictions(csv_path, labels)
    except FileNotFoundError:
        if metrics is None:
            return None
        notes.append("predictions.csv is missing: the images behind the figures cannot be shown")
    except OSError as error:
        notes.append(f"predictions.csv could not be read: {error.strerror or error}")
    if bad:
        notes.append(f"{bad} row(s) of predictions.csv could not be read and were skipped")
    if truncated:
        notes.append(f"predictions.csv is very large: only its first {len(predictions)} rows were read")
    if not labels:
        labels = sorted({p.true for p in predictions} | {p.predicted for p in predictions})[:MAX_CLASSES]
    index = {name: i for i, name in enumerate(labels)}
    matrix = _matrix(metrics, len(labels)) if metrics else None
    if matrix is None:
        matrix = [[0] * len(labels) for _ in labels]
        for p in predictions:
            matrix[index[p.true]][index[p.predicted]] += 1
    per_class = _per_class(metrics, labels) if metrics else []
    if len(per_class) != len(labels):
        per_class = _scores_from_rows(labels, matrix)
    total = sum(map(sum, matrix))
    accuracy = _unit(metrics.get("accuracy")) if metrics else None
    if accuracy is None and total:
        accuracy = sum(matrix[i][i] for i in range(len(labels))) / total
    images = whole(metrics.get("images")) if metrics else None
    macro = metrics.get("macro") if metrics else None
    macro_f1 = _unit(macro.get("f1")) if isinstance(macro, dict) else None
    if macro_f1 is None:
        present = [s.f1 for s in per_class if s.support and s.f1 is not None]
        macro_f1 = sum(present) / len(present) if present else None
    return RunResults(
        run_dir=run_dir,
        labels=labels,
        accuracy=accuracy,
        images=images if images is not None and images >= 0 else total,
        per_class=per_class,
        matrix=matrix,
        predictions=predictions,
        macro_f1=macro_f1,
        bad_rows=bad,
        truncated=truncated,
        notes=notes,
    )


# --------------------------------------------------------------------------- comparing


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


@dataclass(frozen=True)
class ClassComparison:
    """One class in two runs; a side is None when that run has no such class. Differences are b − a."""

    name: str
    a: ClassScore | None
    b: ClassScore | None

    def difference(self, what: str) -> float | None:
        """b − a for "precision", "recall" or "f1" (None when either is unknown)."""
        return _difference(getattr(self.a, what, None), getattr(self.b, what, None))


@dataclass(frozen=True)
class RunComparison:
    a: RunResults
    b: RunResults
    classes: list[ClassComparison]

    @property
    def accuracy_difference(self) -> float | None:
        return _difference(self.a.accuracy, self.b.accuracy)

    @property
    def macro_f1_difference(self) -> float | None:
        return _difference(self.a.macro_f1, self.b.macro_f1)


def compare_runs(a: RunResults, b: RunResults) -> RunComparison:
    """The two runs side by side: every class of `a` in its order, then those only `b` has."""
    names = list(a.labels) + [name for name in b.labels if name not in set(a.labels)]
    return RunComparison(a, b, [ClassComparison(name, a.score(name), b.score(name)) for name in names])


__all__ = [
    "ClassComparison",
    "ClassScore",
    "ImagePrediction",
    "RunComparison",
    "RunResults",
    "compare_runs",
    "read_predictions",
    "read_run_results",
    "real_cell",
]
