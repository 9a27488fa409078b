"""What a finished run leaves beside its best checkpoint: result.json and the report.

Kept apart from training.trainer because none of it trains: it runs once after the last
stage, from what the run recorded (its history, its split, its best checkpoint).
result.json is the run's summary, read by `convnet-train export` and `evaluate`
(training.model_source) and by the app's runs list (desktop.core.run_history); the report
is the same one `convnet-train evaluate` writes, for the validation split, led by the
chance verdict (training.chance) so a run that learned nothing says so first.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keras

from convnet_common.atomic import write_text_atomic
from convnet_common.run_layout import RunFolder
from training import chance, reports
from training.config import TrainConfig
from training.progress import json_text


@dataclass
class TrainResult:
    run_dir: Path
    labels: list[str]
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    train_images: int
    val_images: int
    skipped: list[tuple[str, str]]
    interrupted: bool = False


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_result_json(
    folder: RunFolder,
    result: TrainResult,
    config: TrainConfig,
    backbone: str,
    stages: int,
    base_training: str,
    verdict: chance.ChanceVerdict,
    seconds: float,
    calibration: dict | None = None,
) -> None:
    """result.json, written once: its presence is what makes the run finished.

    `calibration` (training.calibration) is the temperature fitted on the validation split;
    export divides the logits by it (a run without one gets it at its first export)."""
    summary = {
        "labels": result.labels,
        "backbone": backbone,
        "image_size": config.image_size,
        "dataset": config.dataset_name,
        "data_dir": json_text(os.path.abspath(config.data_dir)),
        "train_images": result.train_images,
        "val_images": result.val_images,
        "skipped_images": len(result.skipped),
        "best_val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_run,
        "weights": config.weights,
        "stages": stages,
        "base_training": base_training,
        "beats_chance": verdict.beats_chance,
        "chance": verdict.to_dict(),
        "normalize_polarity": config.normalize_polarity,
        "train_seconds": round(seconds, 1),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if calibration is not None:
        summary["calibration"] = calibration
    write_text_atomic(folder.result, json.dumps(summary, indent=2))


def load_best(folder: RunFolder) -> keras.Model | None:
    """best.keras as `export` and `evaluate` read it (safe_mode), or None when there is none."""
    if not folder.best_checkpoint.is_file():
        return None
    from training.mixed_precision import load_float32

    return load_float32(folder.best_checkpoint)


def fit_calibration(folder: RunFolder, val_samples: list, image_size: int, classifier=None, decode=None) -> dict | None:
    """The temperature for the best checkpoint, fitted on the validation split (None: no
    checkpoint). `classifier`: the best weights already in memory (else best.keras is
    loaded); `decode`: a stand-in for load_image_for_model (decoded_cache.DecodedStore.reader)."""
    from training.run_calibration import fit_run_calibration

    classifier = classifier or load_best(folder)
    if classifier is None:
        return None
    return fit_run_calibration(classifier, val_samples, image_size, decode).to_dict()


def write_validation_report(
    folder: RunFolder,
    verdict: chance.ChanceVerdict,
    val_samples: list,
    class_names: list[str],
    image_size: int,
    skipped: list[tuple[str, str]],
    temperature: float | None = None,
    classifier=None,
    decode=None,
) -> None:
    """The same report `convnet-train evaluate` writes, for the validation split; its
    calibration figures are in-sample (`temperature` was fitted on these images).
    `classifier` and `decode` as for fit_calibration."""
    from convnet_common.imaging import load_image_for_model
    from training.evaluate import evaluate_samples, format_evaluation, keras_predict_fn
    from training.run_calibration import scoring_model

    best = folder.best_checkpoint
    classifier = classifier or load_best(folder)
    if classifier is None:
        return
    report_dir, history = folder.report, folder.history
    evaluation = evaluate_samples(
        keras_predict_fn(scoring_model(classifier)),  # calibration's model: traced once for both
        val_samples,
        class_names,
        image_size,
        report_dir,
        history_csv=None,  # the curves are drawn once, below, with the chance levels
        skipped=skipped,
        source=str(best),
        temperature=temperature,
        temperature_source="fitted on these validation images" if temperature is not None else None,
        decode=decode or load_image_for_model,
    )
    # The verdict leads the report: first key of metrics.json, first line printed, and
    # the chance levels drawn on the curves.
    curves = reports.write_training_curves(
        history, report_dir, chance_levels={"accuracy": verdict.chance_accuracy, "loss": verdict.chance_loss}
    )
    evaluation.files = [*evaluation.files[:-1], *curves, *evaluation.files[-1:]]  # metrics.json stays last
    metrics = json.loads((report_dir / reports.METRICS).read_text(encoding="utf-8"))
    metrics["files"] = [path.name for path in evaluation.files]
    reports.write_metrics_json(report_dir / reports.METRICS, {"verdict": verdict.to_dict(), **metrics})
    _log(verdict.sentence + "\n" + format_evaluation(evaluation))


def write_run_outputs(
    folder: RunFolder,
    result: TrainResult,
    config: TrainConfig,
    training: tuple[str, int, str],
    verdict: chance.ChanceVerdict,
    seconds: float,
    val_samples: list,
    classifier=None,
) -> None:
    """result.json (with the calibration) and the validation report of a finished run.

    The best model is scored once for both: `classifier` when the trainer still holds the
    best weights, else best.keras loaded once; the validation images come from the
    decoded store when the run kept them (training.decoded_cache), not decoded again.
    `training`: (backbone name, number of stages, how the base trained).
    """
    from training.data import decoded_reader

    backbone, stages, base_training = training
    classifier = classifier or load_best(folder)
    decode = decoded_reader(val_samples, config.image_size)
    calibration = fit_calibration(folder, val_samples, config.image_size, classifier, decode)
    write_result_json(folder, result, config, backbone, stages, base_training, verdict, seconds, calibration)
    write_validation_report(
        folder,
        verdict,
        val_samples,
        result.labels,
        config.image_size,
        result.skipped,
        temperature=calibration["temperature"] if calibration else None,
        classifier=classifier,
        decode=decode,
    )
