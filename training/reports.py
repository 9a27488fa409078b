"""Report files for an evaluation: figures (PNG), predictions (CSV) and metrics (JSON).

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot, so no
global backend is chosen and no GUI toolkit is ever imported. Every file goes through
convnet_common.atomic (temporary file, then rename), so an interrupted report never
leaves a half-written PNG or CSV behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convnet_common.atomic import atomic_path, write_text_atomic
from convnet_common.csv_cells import quoted_writer, spreadsheet_cell
from convnet_common.imaging import ImageReadError, load_image_rgb, resize_for_model

CONFUSION_MATRIX = "confusion_matrix.png"
PREDICTIONS = "predictions.csv"
MISCLASSIFIED = "misclassified.png"
METRICS = "metrics.json"
CURVES_LOSS = "curves_loss.png"
CURVES_ACCURACY = "curves_accuracy.png"

MAX_SHEET_IMAGES = 64
_SHEET_COLUMNS = 8
_THUMBNAIL = 128


def _figure(width: float, height: float, layout: str | None = None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def new_figure(width: float, height: float, layout: str | None = None):
    """An Agg figure for report modules beside this one (training.calibration_report)."""
    return _figure(width, height, layout)


def save_figure(figure, destination: str | os.PathLike[str]) -> Path:
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        figure.savefig(tmp, format="png", dpi=figure.dpi, bbox_inches="tight")
    return destination


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def short_file_name(path: str, limit: int = 24) -> str:
    """A file's name cut in the middle to fit under a thumbnail: the start (usually what
    tells files apart: IMG_2041, cat.17) and the end with the extension both stay."""
    name = Path(path).name
    if len(name) <= limit:
        return name
    stem, suffix = os.path.splitext(name)
    suffix = suffix if len(suffix) <= 6 else ""
    keep = limit - 1 - len(suffix)
    head = (keep + 1) // 2
    return f"{stem[:head]}…{stem[len(stem) - (keep - head) :] if keep > head else ''}{suffix}"


# --------------------------------------------------------------------------- tables


def write_predictions_csv(destination, rows: Sequence[dict]) -> Path:
    """One row per image: path, true, predicted, confidence, correct, top_k (JSON list); every
    cell quoted and neutralised by the rule the app's CSV follows (convnet_common.csv_cells)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["path", "true", "predicted", "confidence", "correct", "top_k"])
    writer = quoted_writer(buffer)  # names are strangers' text: one rule with the app (csv_cells)
    for row in rows:
        writer.writerow(
            [
                spreadsheet_cell(str(cell))
                for cell in [
                    row["path"],
                    row["true"],
                    row["predicted"],
                    f"{row['confidence']:.6f}",
                    "true" if row["correct"] else "false",
                    json.dumps([{"label": label, "probability": round(p, 6)} for label, p in row["top_k"]]),
                ]
            ]
        )
    write_text_atomic(destination, buffer.getvalue())
    return Path(destination)


def write_metrics_json(destination, metrics: dict) -> Path:
    write_text_atomic(destination, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return Path(destination)


# --------------------------------------------------------------------------- confusion matrix


def plot_confusion_matrix(destination, matrix: np.ndarray, labels: Sequence[str]) -> Path:
    """Counts in the cells, colour by the share of each true class (rows sum to 1)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    n = len(labels)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64), where=totals > 0)
    side = float(min(30.0, max(6.0, 0.5 * n + 3.0)))
    figure = _figure(side + 1.5, side)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label("share of the true class")
    if n <= 100:
        font = max(5, min(10, int(300 / max(n, 1))))
        names = [_short(label) for label in labels]
        rotate = n > 6 and max(len(name) for name in names) > 3
        axes.set_xticks(range(n), labels=names, rotation=90 if rotate else 0, fontsize=font)
        axes.set_yticks(range(n), labels=names, fontsize=font)
    if n <= 40:
        font = max(5, min(10, int(240 / max(n, 1))))
        for row in range(n):
            for column in range(n):
                count = matrix[row, column]
                if count == 0 and row != column:
                    continue
                colour = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=font)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    axes.set_title(f"Confusion matrix ({matrix.sum()} images, accuracy {accuracy:.3f})")
    return save_figure(figure, destination)


# --------------------------------------------------------------------------- contact sheet


def _thumbnail(path: str) -> np.ndarray | None:
    try:
        image = load_image_rgb(path)
    except ImageReadError:
        return None
    height, width = image.shape[:2]
    scale = _THUMBNAIL / max(height, width)
    if scale < 1.0:
        image = resize_for_model(image, max(1, round(height * scale)), max(1, round(width * scale)))
    return image


def plot_misclassified(destination, mistakes: Sequence[dict], total_images: int, limit: int = MAX_SHEET_IMAGES) -> Path:
    """Thumbnails of misclassified images, most confident mistakes first, each with its
    true and predicted class above it and its file name below (to find the file).

    `mistakes` rows need path, true, predicted and confidence (as in predictions.csv).
    """
    mistakes = sorted(mistakes, key=lambda row: -row["confidence"])
    shown = mistakes[:limit]
    if not shown:
        figure = _figure(6, 2)
        figure.text(
            0.5,
            0.5,
            f"No misclassified images\n({total_images} of {total_images} classified correctly)",
            ha="center",
            va="center",
            fontsize=14,
        )
        return save_figure(figure, destination)
    columns = min(_SHEET_COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = _figure(1.9 * columns, 2.2 * rows + 0.5, layout="constrained")
    for index, row in enumerate(shown):
        axes = figure.add_subplot(rows, columns, index + 1)
        thumbnail = _thumbnail(row["path"])
        if thumbnail is None:
            axes.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=axes.transAxes)
        else:
            axes.imshow(thumbnail, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_xlabel(short_file_name(row["path"]), fontsize=7)
        axes.set_title(
            f"{_short(row['true'], 10)} → {_short(row['predicted'], 10)} ({row['confidence']:.2f})",
            fontsize=8,
            color="darkred",
        )
    more = f", showing the {len(shown)} most confident" if len(mistakes) > len(shown) else ""
    figure.suptitle(
        f"Misclassified: {len(mistakes)} of {total_images} images{more} (true → predicted (confidence), file)",
        fontsize=11,
    )
    return save_figure(figure, destination)


# --------------------------------------------------------------------------- training curves


def _read_history(history_csv: Path) -> dict[str, np.ndarray]:
    with open(history_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key is None:
                continue
            try:
                number = float(value) if value not in (None, "") else math.nan
            except ValueError:
                number = math.nan
            columns.setdefault(key.strip(), []).append(number)
    return {key: np.array(values, dtype=np.float64) for key, values in columns.items()}


def _x_axis(history: dict[str, np.ndarray], count: int) -> np.ndarray:
    """The epoch column when it increases strictly (one fit, or stage 2 continuing the
    count), else 1..N in row order (stage 2 restarting at epoch 1)."""
    epochs = history.get("epoch")
    if epochs is not None and not np.isnan(epochs).any() and np.all(np.diff(epochs) > 0):
        return epochs
    return np.arange(1, count + 1, dtype=np.float64)


def _stage_two_start(history: dict[str, np.ndarray], x: np.ndarray) -> float | None:
    stages = history.get("stage")
    if stages is None:
        return None
    later = np.flatnonzero(stages >= 2)
    if not len(later) or later[0] == 0:
        return None
    first = later[0]
    return float((x[first - 1] + x[first]) / 2.0)


def _honest_y_axis(axes, values: list[np.ndarray], floor: float | None = None) -> None:
    """Plain tick labels (no "+1.098" offset) and a y range of at least 5% of the values'
    size, so a flat line is drawn flat instead of zoomed into something that looks like
    learning."""
    axes.ticklabel_format(axis="y", style="plain", useOffset=False)
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if not finite.size:
        return
    low, high = float(finite.min()), float(finite.max())
    minimum = 0.05 * max(abs(low), abs(high), 1.0)
    if high - low < minimum:
        middle = (low + high) / 2.0
        low, high = middle - minimum / 2.0, middle + minimum / 2.0
        if floor is not None and low < floor:
            low, high = floor, floor + minimum
        axes.set_ylim(low, high)


def _curve(
    destination, history, x, metric: str, title: str, ylabel: str, chance_level: float | None = None
) -> Path | None:
    train, validation = history.get(metric), history.get(f"val_{metric}")
    if (train is None or np.isnan(train).all()) and (validation is None or np.isnan(validation).all()):
        return None
    figure = _figure(7, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    if train is not None and not np.isnan(train).all():
        axes.plot(x, train, marker="o", markersize=3, label="training")
    if validation is not None and not np.isnan(validation).all():
        axes.plot(x, validation, marker="o", markersize=3, label="validation")
        if metric == "accuracy":
            best = int(np.nanargmax(validation))
            axes.scatter(
                [x[best]],
                [validation[best]],
                s=80,
                facecolors="none",
                edgecolors="black",
                zorder=5,
                label=f"best validation ({validation[best]:.3f})",
            )
    if chance_level is not None:
        axes.axhline(
            chance_level, color="firebrick", linestyle=":", linewidth=1.2, label=f"chance ({chance_level:.3f})"
        )
    boundary = _stage_two_start(history, x)
    if boundary is not None:
        axes.axvline(boundary, color="grey", linestyle="--", linewidth=1)
        axes.axvspan(boundary, float(x[-1]) + 0.5, color="orange", alpha=0.08, label="stage 2: fine-tuning")
        axes.text(
            boundary, 1.0, " fine-tuning →", transform=axes.get_xaxis_transform(), va="top", fontsize=8, color="dimgrey"
        )
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if len(x) <= 30:
        axes.set_xticks(x)
    plotted = [v for v in (train, validation) if v is not None]
    _honest_y_axis(axes, plotted + ([np.array([chance_level])] if chance_level is not None else []), floor=0.0)
    axes.legend()
    return save_figure(figure, destination)


def write_training_curves(
    history_csv: str | os.PathLike[str] | None,
    report_dir: str | os.PathLike[str],
    chance_levels: dict[str, float] | None = None,
) -> list[Path]:
    """curves_loss.png and curves_accuracy.png (training vs validation per epoch).

    A `stage` column (1 = frozen base, 2 = fine-tuning) marks where stage 2 starts.
    `chance_levels` ("accuracy", "loss") draws what a model that ignores the image gets.
    Returns the files written; none when there is no history or it has no rows.
    """
    if history_csv is None or not Path(history_csv).is_file():
        return []
    history = _read_history(Path(history_csv))
    count = max((len(values) for values in history.values()), default=0)
    if count == 0:
        return []
    x = _x_axis(history, count)
    report_dir, levels = Path(report_dir), chance_levels or {}
    written = [
        _curve(report_dir / CURVES_LOSS, history, x, "loss", "Loss per epoch", "loss", levels.get("loss")),
        _curve(
            report_dir / CURVES_ACCURACY,
            history,
            x,
            "accuracy",
            "Accuracy per epoch",
            "accuracy",
            levels.get("accuracy"),
        ),
    ]
    return [path for path in written if path is not None]
