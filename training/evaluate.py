"""`convnet-train evaluate`: score a training run or an exported model on class folders.

    evaluate(RUN_DIR | MODEL.onnx, DATA_DIR, report_dir=None, top_k=5) -> EvaluationResult

prints (format_evaluation) accuracy, top-k accuracy and per-class precision / recall /
F1, and writes a report folder. Without report_dir that is a new folder, never an
existing one: RUN_DIR/evaluations/<DATA_DIR's name> for a run (RUN_DIR/report is the
run's own validation report, written by training, and is never touched here), or
./report-<model stem> for an .onnx file; "-2", "-3", … are added when taken.

  metrics.json           everything printed, plus the confusion matrix and skipped files
  predictions.csv        path, true, predicted, confidence, correct, top_k (JSON)
  confusion_matrix.png   counts in the cells, colour = share of the true class
  misclassified.png      contact sheet of the most confident mistakes
  curves_loss.png        training vs validation per epoch (runs with a history.csv)
  curves_accuracy.png
  reliability.png        accuracy vs confidence per bin, before and after calibration

metrics.json's "calibration" holds ECE (15 equal-width bins) and NLL before and after the
model's temperature (training.calibration_report); predictions.csv's confidences are the
calibrated ones, what the exported model gives.

A run is scored with its Keras checkpoint on float32 pixels 0..255 (what training saw);
an .onnx file with ONNX Runtime on uint8 pixels (what the app sees), decoded and resized
as training and the app do. `evaluate_samples` does the same for an in-memory sample list
and any predict function (how the trainer scores its validation split).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from convnet_common.imaging import ImageReadError, load_image_for_model
from convnet_common.run_layout import RunFolder
from convnet_common.terminal_text import terminal_safe
from training import calibration_report, reports
from training.data import Sample, scan_class_folders
from training.model_source import (  # noqa: F401 - EvaluationError, keras_predict_fn: re-exported
    EvaluationError,
    PredictFn,
    keras_predict_fn,
    load_model_to_score,
)


@dataclass
class ClassMetrics:
    name: str
    precision: float | None  # None: the class was never predicted
    recall: float | None  # None: the class has no images in the data
    f1: float | None
    support: int


@dataclass
class EvaluationResult:
    source: str
    data_dir: str | None
    labels: list[str]
    images: int
    accuracy: float
    top_k: int
    top_k_accuracy: float
    per_class: list[ClassMetrics]
    macro: dict[str, float]  # precision, recall, f1 over the classes present in the data
    weighted: dict[str, float]  # weighted by support
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    misclassified: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    report_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    calibration: dict | None = None  # calibration_report.measure's section

    @property
    def absent_classes(self) -> list[str]:
        return [c.name for c in self.per_class if c.support == 0]

    def to_dict(self) -> dict:
        values = asdict(self)
        values["report_dir"] = str(self.report_dir) if self.report_dir else None
        values["files"] = [path.name for path in self.files]
        values["skipped"] = [{"path": path, "reason": reason} for path, reason in self.skipped]
        values["absent_classes"] = self.absent_classes
        return values


# --------------------------------------------------------------------------- scoring


def _predict_all(
    predict: PredictFn,
    samples: Sequence[Sample],
    image_size: tuple[int, int],
    batch_size: int,
    fixed_batch: int | None,
    decode=load_image_for_model,
) -> tuple[list[Sample], np.ndarray, list[tuple[str, str]]]:
    """Decode and predict batch by batch (never all images in memory at once)."""
    kept, chunks, skipped = [], [], []
    step = fixed_batch or batch_size
    for start in range(0, len(samples), step):
        images, batch = [], []
        for sample in samples[start : start + step]:
            try:
                images.append(decode(sample.path, *image_size))
            except ImageReadError as error:  # changed since the scan
                skipped.append((sample.path, str(error).split(": ", 1)[-1]))
                continue
            batch.append(sample)
        if not batch:
            continue
        array = np.stack(images)
        if fixed_batch and len(array) < fixed_batch:
            array = np.concatenate([array, np.zeros((fixed_batch - len(array), *array.shape[1:]), np.uint8)])
        probabilities = np.asarray(predict(array), dtype=np.float64)[: len(batch)]
        kept.extend(batch)
        chunks.append(probabilities)
    return kept, (np.concatenate(chunks) if chunks else np.zeros((0, 0))), skipped


def _metrics(truth: np.ndarray, probabilities: np.ndarray, labels: list[str], top_k: int):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    n = len(labels)
    predicted = probabilities.argmax(axis=1)
    everything = list(range(n))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=everything, zero_division=0.0
    )
    predicted_counts = np.bincount(predicted, minlength=n)
    per_class = []
    for i, name in enumerate(labels):
        present, chosen = support[i] > 0, predicted_counts[i] > 0
        per_class.append(
            ClassMetrics(
                name,
                float(precision[i]) if chosen or present else None,
                float(recall[i]) if present else None,
                float(f1[i]) if present else None,
                int(support[i]),
            )
        )
    present = sorted(set(truth.tolist()))
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            truth, predicted, labels=present, average=average, zero_division=0.0
        )
        averages[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    k = min(top_k, n)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    top_k_accuracy = float(np.mean(np.any(top == truth[:, None], axis=1)))
    matrix = confusion_matrix(truth, predicted, labels=everything)
    return predicted, top, per_class, averages, top_k_accuracy, matrix


def evaluate_samples(
    predict_fn: PredictFn,
    samples: Sequence[Sample],
    labels: Sequence[str],
    image_size: int | tuple[int, int],
    report_dir: str | os.PathLike[str] | None,
    history_csv: str | os.PathLike[str] | None = None,
    top_k: int = 5,
    batch_size: int = 64,
    skipped: Sequence[tuple[str, str]] = (),
    source: str = "",
    data_dir: str | None = None,
    fixed_batch: int | None = None,
    temperature: float | None = None,
    temperature_source: str | None = None,
    calibrated: bool = False,
    decode=load_image_for_model,
) -> EvaluationResult:
    """Score `samples` (labels index into `labels`) and write the report (unless report_dir is None).

    predict_fn maps a uint8 NHWC batch to (N, classes) probabilities; for a Keras
    classifier use keras_predict_fn(model). `temperature` is the model's calibration:
    with `calibrated` the predictions already include it (an exported file), else they are
    the plain softmax (a run's checkpoint); the report shows both sides (calibration_report).
    `decode`: load_image_for_model or its in-memory stand-in (decoded_cache.DecodedStore.reader).
    """
    labels = list(labels)
    if top_k < 1:
        raise EvaluationError(f"--top-k must be at least 1, got {top_k}")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    kept, probabilities, late_skips = _predict_all(predict_fn, list(samples), size, batch_size, fixed_batch, decode)
    skipped = list(skipped) + late_skips
    if not kept:
        raise EvaluationError(f"no readable images to evaluate{f' in {data_dir}' if data_dir else ''}")
    if probabilities.shape[1] != len(labels):
        raise EvaluationError(
            f"the model gives {probabilities.shape[1]} class probabilities but has {len(labels)} labels"
        )
    truth = np.array([sample.label for sample in kept], dtype=np.int64)
    calibration, probabilities = calibration_report.measure(
        probabilities, truth, temperature, calibrated, temperature_source
    )
    predicted, top, per_class, averages, top_k_accuracy, matrix = _metrics(truth, probabilities, labels, top_k)
    rows = [
        {
            "path": sample.path,
            "true": labels[truth[i]],
            "predicted": labels[predicted[i]],
            "confidence": float(probabilities[i, predicted[i]]),
            "correct": bool(predicted[i] == truth[i]),
            "top_k": [(labels[j], float(probabilities[i, j])) for j in top[i]],
        }
        for i, sample in enumerate(kept)
    ]
    result = EvaluationResult(
        source=str(source),
        data_dir=str(data_dir) if data_dir is not None else None,
        labels=labels,
        images=len(kept),
        accuracy=float(np.mean(predicted == truth)),
        top_k=min(top_k, len(labels)),
        top_k_accuracy=top_k_accuracy,
        per_class=per_class,
        macro=averages["macro"],
        weighted=averages["weighted"],
        confusion_matrix=matrix.tolist(),
        misclassified=int(np.sum(predicted != truth)),
        skipped=skipped,
        calibration=calibration,
    )
    if report_dir is not None:
        write_report(result, rows, Path(report_dir), history_csv)
    return result


def write_report(result: EvaluationResult, rows: list[dict], report_dir: Path, history_csv=None) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    files = [
        reports.write_predictions_csv(report_dir / reports.PREDICTIONS, rows),
        reports.plot_confusion_matrix(
            report_dir / reports.CONFUSION_MATRIX, np.array(result.confusion_matrix), result.labels
        ),
        reports.plot_misclassified(
            report_dir / reports.MISCLASSIFIED, [r for r in rows if not r["correct"]], result.images
        ),
    ]
    if result.calibration is not None:
        files.append(
            calibration_report.plot_reliability(report_dir / calibration_report.RELIABILITY, result.calibration)
        )
    files.extend(reports.write_training_curves(history_csv, report_dir))
    result.report_dir = report_dir
    result.files = files + [report_dir / reports.METRICS]
    metrics = result.to_dict()
    metrics["evaluated_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    reports.write_metrics_json(report_dir / reports.METRICS, metrics)


def _check_class_folders(data_dir: Path, labels: list[str]) -> None:
    if not data_dir.is_dir():
        raise EvaluationError(f"data folder not found: {data_dir}")
    folders = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [name for name in folders if name not in labels]
    if unknown:  # folder and class names are printed: escaped, so the message stays one clean line
        known = ", ".join(map(terminal_safe, labels[:20])) + (f", … ({len(labels)} in all)" if len(labels) > 20 else "")
        raise EvaluationError(
            terminal_safe(
                f"class folder(s) in {data_dir} that the model does not know: {', '.join(unknown)}. "
                f"The model's classes are: {known}"
            )
        )
    if not folders:
        raise EvaluationError(f"{data_dir} holds no class folders: put the images in one sub-folder per class")


def new_folder(wanted: Path) -> Path:
    """Create and return `wanted`, or `wanted-2`, `wanted-3`, … if taken: never an existing folder.

    mkdir without exist_ok claims the name, so two evaluations started at once get two folders.
    """
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        candidate = wanted if number == 1 else wanted.with_name(f"{wanted.name}-{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise EvaluationError(f"no free report folder name next to {wanted}; pass --report DIR")


def _report_folder(source: Path, data_dir: Path, report_dir, default: Path) -> Path:
    """Where this evaluation's report goes; see the module docstring."""
    if source.is_dir():
        run = RunFolder(source)
        own = run.report  # the run's own validation report, written by the trainer
        if report_dir is None:
            return new_folder(run.evaluations / (data_dir.resolve().name or "data"))
        if Path(report_dir).resolve() == own.resolve():
            raise EvaluationError(
                f"{own} is the run's own validation report, written by training; choose another --report folder "
                f"(or leave --report out: {run.evaluations}/{data_dir.resolve().name})"
            )
        return Path(report_dir)
    return Path(report_dir) if report_dir is not None else new_folder(default)


def evaluate(
    source: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str] | None = None,
    top_k: int = 5,
    batch_size: int = 64,
) -> EvaluationResult:
    """Score a run folder (Keras checkpoint) or an exported .onnx on DATA_DIR's class folders.

    The report goes to report_dir, or to a new folder (module docstring); the run's own
    RUN_DIR/report is refused as report_dir.
    """
    model = load_model_to_score(source, batch_size)
    data_dir = Path(data_dir)
    _check_class_folders(data_dir, model.labels)
    scanned = scan_class_folders(data_dir, class_names=model.labels)
    if not scanned.samples:
        raise EvaluationError(f"{data_dir} contains no readable images in its class folders")
    fresh = report_dir is None
    report_dir = _report_folder(Path(source), data_dir, report_dir, model.default_report_dir)
    try:
        return evaluate_samples(
            model.predict,
            scanned.samples,
            model.labels,
            model.image_size,
            report_dir,
            history_csv=model.history_csv,
            top_k=top_k,
            batch_size=batch_size,
            skipped=scanned.skipped,
            source=str(source),
            data_dir=str(data_dir),
            fixed_batch=model.batch_size,
            temperature=model.temperature,
            temperature_source=model.temperature_source,
            calibrated=model.calibrated,
        )
    except BaseException:
        if fresh and not any(report_dir.iterdir()):
            report_dir.rmdir()  # the folder claimed for this report; nothing was written
        raise


# --------------------------------------------------------------------------- text


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_evaluation(result: EvaluationResult, max_skipped: int = 20) -> str:
    """The printed summary. Class names, paths and reasons come from models and folders, so
    each line goes through terminal_safe (escape sequences and newlines shown, not acted
    on), the class names before the column width is measured so the table stays aligned."""
    names = [terminal_safe(c.name) for c in result.per_class]
    width = max(12, min(40, max(len(name) for name in names)))
    lines = [
        f"evaluated {result.source} on {result.images} images"
        + (f" from {result.data_dir}" if result.data_dir else "")
        + (f" ({len(result.skipped)} skipped)" if result.skipped else ""),
        f"accuracy:        {result.accuracy:.4f}  ({result.images - result.misclassified}/{result.images})",
        f"top-{result.top_k} accuracy:  {result.top_k_accuracy:.4f}",
        "",
        f"{'class':<{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>7}",
    ]
    for c, shown in zip(result.per_class, names):
        name = shown if len(shown) <= width else shown[: width - 1] + "…"
        note = "  (no images in the data)" if c.support == 0 else ""
        lines.append(
            f"{name:<{width}}  {_number(c.precision):>9}  {_number(c.recall):>9}  {_number(c.f1):>9}  {c.support:>7}{note}"
        )
    lines.append("")
    for title, values in (("macro avg", result.macro), ("weighted avg", result.weighted)):
        lines.append(
            f"{title:<{width}}  {values['precision']:>9.4f}  {values['recall']:>9.4f}  {values['f1']:>9.4f}  "
            f"{result.images:>7}"
        )
    if result.absent_classes:
        lines.append(
            f"averages are over the {len(result.labels) - len(result.absent_classes)} classes present in the data"
        )
    lines.extend(calibration_report.format_lines(result.calibration))
    if result.skipped:
        lines.append("")
        lines.append(f"skipped {len(result.skipped)} unreadable file(s):")
        lines.extend(f"  {path}: {reason}" for path, reason in result.skipped[:max_skipped])
        if len(result.skipped) > max_skipped:
            lines.append(f"  … and {len(result.skipped) - max_skipped} more (all listed in {reports.METRICS})")
    if result.report_dir is not None:
        lines.append("")
        lines.append(f"report: {result.report_dir} ({', '.join(path.name for path in result.files)})")
    return "\n".join(terminal_safe(line) for line in lines)
