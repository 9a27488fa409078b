"""Turn a training run into one self-describing ONNX file, and prove it matches Keras.

The file follows convnet_common.model_format (docs/model-format.md): uint8 RGB NHWC input
`image`, outputs `probabilities` (calibrated: the run's temperature divides the logits
before the softmax) and `cam`, labels, training facts and the calibration in metadata_props.
Nothing is left at the destination unless ONNX Runtime reproduces Keras's
probabilities on the validation images within the tolerance.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convnet_common import model_format as fmt
from convnet_common.atomic import atomic_path
from convnet_common.run_layout import RunFolder
from convnet_common.unknown_score import KEY_UNKNOWN, UNKNOWN_OUTPUT
from training import data, mixed_precision, registry, unknown_score


class ExportError(RuntimeError):
    pass


@dataclass
class ExportReport:
    path: Path
    checked_images: int
    max_probability_difference: float
    max_cam_difference: float
    test_accuracy: float | None
    test_images: int
    size_bytes: int
    precision: str = "fp32"
    top1_agreement: float | None = None  # with the fp32 model, for fp16/int8
    agreement_max_probability_difference: float | None = None
    max_unknown_score_difference: float | None = None  # relative, see unknown_score.score_difference
    max_cam_fine_difference: float | None = None  # the cam_fine output's, when the file has one


PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_IMAGES = 256


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_run(run_dir: Path):
    """The best checkpoint (safe_mode, no code from the file runs) and the run's records."""
    folder = RunFolder(run_dir)
    if not folder.best_checkpoint.is_file():
        raise ExportError(f"{run_dir} has no {folder.BEST_CHECKPOINT}; is it a finished training run?")
    classifier = mixed_precision.load_float32(folder.best_checkpoint)
    result = json.loads(folder.result.read_text(encoding="utf-8"))
    split = json.loads(folder.split.read_text(encoding="utf-8"))
    return classifier, result, split


def convert_to_onnx(export_model, image_size: int):
    """tf2onnx with an explicit, named uint8 input signature (what works for Keras 3)."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, image_size, image_size, 3), tf.uint8, name=fmt.INPUT_NAME),)
    from training.onnx_tools import fold_initializer_shapes

    proto, _ = tf2onnx.convert.from_keras(export_model, input_signature=signature, opset=fmt.OPSET)
    from training.fine_cam import export_output_names

    _name_outputs(proto, export_output_names(export_model))
    # tf2onnx keeps weight-sized tensors whose only use is their shape: half the file.
    return fold_initializer_shapes(proto)


def _name_outputs(proto, wanted: list[str]) -> None:
    """Give graph outputs the contract's names, through Identity nodes when tf2onnx chose others."""
    from onnx import helper

    for output, name in zip(proto.graph.output, wanted):
        if output.name == name:
            continue
        proto.graph.node.append(helper.make_node("Identity", [output.name], [name], name=f"rename_{name}"))
        output.name = name


def set_metadata(proto, values: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _replace_metadata(proto, key: str, value: str) -> None:
    """Set one metadata entry in place, keeping the others and their order."""
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value


def _session(source):
    import onnxruntime as ort

    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _predict_onnx(session, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    probabilities, cams = [], []
    for start in range(0, len(images), batch_size):
        p, c = session.run(
            [fmt.PROBABILITIES_OUTPUT, fmt.CAM_OUTPUT], {fmt.INPUT_NAME: images[start : start + batch_size]}
        )
        probabilities.append(p)
        cams.append(c)
    return np.concatenate(probabilities), np.concatenate(cams)


def accuracy_on_folder(session, folder: str, labels: list[str], image_size: int) -> tuple[float, int]:
    scanned = data.scan_class_folders(folder, class_names=labels)
    if not scanned.samples:
        raise ExportError(f"test folder {folder} has no readable images in class folders named like the labels")
    images, truth = data.load_batch(scanned.samples, image_size)
    probabilities, _ = _predict_onnx(session, images)
    return float(np.mean(probabilities.argmax(axis=1) == truth)), len(truth)


def export_run(
    run_dir: str | Path,
    out: str | Path,
    test_dir: str | None = None,
    tolerance: float = 1e-4,
    max_check_images: int = 256,
    precision: str = "fp32",
    unknown_accept_rate: float = unknown_score.ACCEPT_RATE,
    fine_map: bool = True,
) -> ExportReport:
    """fp32 export checked against Keras; fp16/int8 are then derived from it and checked
    for top-1 agreement with it (training.precision), before anything is written.

    `unknown_accept_rate`: the share of validation images the unknown threshold accepts.
    `fine_map`: add `cam_fine` (LayerCAM at the network's `fine_cam_layer`) when it names one."""
    if not 0.5 <= unknown_accept_rate <= 1.0:
        raise ExportError(f"the unknown accept rate must be between 0.5 and 1, got {unknown_accept_rate:g}")
    from training.model_builder import build_export_model
    from training.run_calibration import calibration_for_export

    run_dir, out = Path(run_dir), Path(out)
    classifier, result, split = load_run(run_dir)
    labels: list[str] = result["labels"]
    image_size = int(result["image_size"])
    backbone = registry.get_backbone(result["backbone"])
    # Calibrated probabilities for every reader: logits / T inside the graph (training.calibration).
    calibration = calibration_for_export(run_dir, classifier, result, split)
    # The "unknown" score: fitted on the training split, threshold from validation (training.unknown_score).
    unknown = unknown_score.prepare_for_export(classifier, split, image_size, unknown_accept_rate)
    from training.fine_cam import fine_cam_layer_of

    fine_layer = fine_cam_layer_of(backbone.name) if fine_map else None
    export_model = build_export_model(classifier, calibration.temperature, unknown.layer(), fine_layer)
    proto = convert_to_onnx(export_model, image_size)

    test_accuracy, test_images = None, 0
    if test_dir:
        test_accuracy, test_images = accuracy_on_folder(
            _session(proto.SerializeToString()), test_dir, labels, image_size
        )
        _log(f"accuracy on {test_dir} ({test_images} images never used in training): {test_accuracy:.4f}")

    training_facts = {
        "dataset": result["dataset"],
        "image_count": result["train_images"] + result["val_images"],
        "train_images": result["train_images"],
        "val_images": result["val_images"],
        "val_accuracy": round(result["best_val_accuracy"], 4),
        "epochs": result["epochs"],
        "weights": result["weights"],
    }
    if test_accuracy is not None:
        training_facts.update(test_accuracy=round(test_accuracy, 4), test_images=test_images)
        training_facts["held_out_accuracy"] = training_facts["test_accuracy"]
        training_facts["held_out_split"] = "separate test folder, never seen in training or model selection"
    else:
        training_facts["held_out_accuracy"] = training_facts["val_accuracy"]
        training_facts["held_out_split"] = "validation split (not trained on; used to pick the best epoch)"
    from training.config import load_yaml_limited

    config = load_yaml_limited(RunFolder(run_dir).config) or {}
    set_metadata(
        proto,
        model_metadata(
            labels,
            image_size,
            backbone,
            training_facts,
            config.get("augmentation", {}),
            bool(result.get("normalize_polarity")),
            calibration=calibration.to_dict(),
            unknown=unknown.record,
            cam_fine_layer=fine_layer,
        ),
    )
    val_samples = [data.Sample(path, label) for path, label in split["val"]][:max_check_images]
    images, _ = data.load_batch(val_samples, image_size)

    def calibration_images() -> np.ndarray:
        train = [data.Sample(path, label) for path, label in split["train"]]
        picks = np.random.default_rng(0).permutation(len(train))[:CALIBRATION_IMAGES]
        return data.load_batch([train[i] for i in picks], image_size)[0]

    def rethreshold(converted_path: str) -> dict:
        """The `unknown` entry re-chosen from the converted file's own validation scores: int8
        moves scores near the threshold (the feature map is quantised), so the fp32 threshold
        would accept a different share than the one stated."""
        val = [data.Sample(path, label) for path, label in split["val"]]
        session = _session(converted_path)
        scores = np.concatenate(
            [
                unknown_score.onnx_scores(session, data.load_batch(val[start : start + 256], image_size)[0])
                for start in range(0, len(val), 256)
            ]
        )
        record = unknown_score.threshold_record(scores, unknown.fit, unknown_accept_rate)
        record["scored_by"] = f"the {precision} file"
        return record

    report = write_verified(
        proto, export_model, images, out, tolerance, precision, calibration_images, "validation images", rethreshold
    )
    report.test_accuracy, report.test_images = test_accuracy, test_images
    return report


def model_metadata(
    labels: list[str],
    image_size: int,
    backbone: registry.Backbone,
    training_facts: dict,
    augmentation: dict,
    normalize_polarity: bool = False,
    cam_layer: str | None = None,
    calibration: dict | None = None,
    unknown: dict | None = None,
    cam_fine_layer: str | None = None,
) -> dict[str, str]:
    """The metadata_props of docs/model-format.md."""
    values = {
        fmt.KEY_FORMAT_VERSION: fmt.FORMAT_VERSION,
        fmt.KEY_LABELS: json.dumps(labels),
        fmt.KEY_INPUT_SIZE: json.dumps([image_size, image_size]),
        fmt.KEY_BACKBONE: backbone.name,
        fmt.KEY_TRAINING: json.dumps(training_facts),
        fmt.KEY_PREPROCESSING: registry.describe_preprocessing(backbone, normalize_polarity),
        fmt.KEY_AUGMENTATION: json.dumps(augmentation),
        fmt.KEY_PRECISION: "fp32",
        fmt.KEY_EXPORTED_AT: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        fmt.KEY_CAM_LAYER: cam_layer or backbone.last_conv_layer,
    }
    if calibration is not None:
        values[fmt.KEY_CALIBRATION] = json.dumps(calibration)
    if unknown is not None:
        values[KEY_UNKNOWN] = json.dumps(unknown)
    if cam_fine_layer:
        from training.fine_cam import METHOD

        values[fmt.KEY_CAM_FINE_LAYER] = cam_fine_layer
        values[fmt.KEY_CAM_FINE_METHOD] = METHOD
    return values


def write_verified(
    proto,
    export_model,
    images: np.ndarray,
    out: Path,
    tolerance: float,
    precision: str,
    calibration_images,
    what: str,
    rethreshold=None,
) -> ExportReport:
    """Write `proto` to `out` only if ONNX Runtime matches Keras on `images` (and, for
    fp16/int8, the converted model agrees with fp32); otherwise raise and keep nothing.

    `rethreshold(path)`, for fp16/int8 files with an unknown score, gives the `unknown`
    entry measured on the converted file itself."""
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    from training.fine_cam import export_output_names, fine_map_difference

    proto.producer_name = "convnet-studio"
    keras_outputs = dict(
        zip(export_output_names(export_model), export_model.predict(images, verbose=0, batch_size=64), strict=True)
    )
    keras_probabilities, keras_cam = keras_outputs[fmt.PROBABILITIES_OUTPUT], keras_outputs[fmt.CAM_OUTPUT]
    keras_scores = [keras_outputs[UNKNOWN_OUTPUT]] if UNKNOWN_OUTPUT in keras_outputs else []
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_bytes(proto.SerializeToString())
        onnx_probabilities, onnx_cam = _predict_onnx(_session(str(tmp)), images)
        prob_diff = float(np.max(np.abs(onnx_probabilities - keras_probabilities)))
        cam_scale = max(1.0, float(np.max(np.abs(keras_cam))))
        cam_diff = float(np.max(np.abs(onnx_cam - keras_cam))) / cam_scale
        fine_diff = fine_map_difference(_session(str(tmp)), keras_outputs.get(fmt.CAM_FINE_OUTPUT), images)
        cam_diff_with_fine = max(cam_diff, fine_diff or 0.0)
        if prob_diff > tolerance or cam_diff_with_fine > tolerance:
            raise ExportError(
                f"ONNX Runtime disagrees with Keras on {len(images)} {what}: max probability "
                f"difference {prob_diff:.2e}, max activation-map difference {cam_diff_with_fine:.2e} "
                f"(tolerance {tolerance:.0e}); nothing was written to {out}"
            )
        _log(
            f"fp32 parity with Keras on {len(images)} {what}: max probability difference "
            f"{prob_diff:.2e}, max activation-map difference {cam_diff:.2e}"
            + (f", fine map (cam_fine) {fine_diff:.2e}" if fine_diff is not None else "")
            + f" ({tmp.stat().st_size / 1e6:.2f} MB)"
        )
        score_diff = _check_scores(str(tmp), keras_scores, images, "fp32")
        agreement = None
        if precision != "fp32":
            calibration = calibration_images() if precision == "int8" else None
            agreement, converted = _convert_precision(proto, precision, calibration, images, tmp)
            score_diff = _check_scores(str(tmp), keras_scores, images, precision)
            if keras_scores and rethreshold is not None:
                record = rethreshold(str(tmp))
                _replace_metadata(converted, KEY_UNKNOWN, json.dumps(record))
                tmp.write_bytes(converted.SerializeToString())
                _log(
                    f"{precision} unknown threshold from the file's own validation scores: "
                    f"{record['threshold']:.4g} (accepts {record['accept_rate']:.0%})"
                )
    size = out.stat().st_size
    _log(f"exported {out} ({precision}, {size / 1e6:.2f} MB)")
    return ExportReport(
        out,
        len(images),
        prob_diff,
        cam_diff,
        None,
        0,
        size,
        precision,
        agreement.top1_agreement if agreement else None,
        agreement.max_probability_difference if agreement else None,
        score_diff,
        fine_diff,
    )


def _check_scores(path: str, keras_scores: list, images: np.ndarray, precision: str) -> float | None:
    """The file's unknown_score against Keras's (none when the graph has no score)."""
    if not keras_scores:
        return None
    difference = unknown_score.score_difference(keras_scores[0], unknown_score.onnx_scores(_session(path), images))
    if not difference <= unknown_score.SCORE_TOLERANCE[precision]:
        raise ExportError(
            f"the {precision} model's unknown_score differs from Keras's by {difference:.2e} (relative) on "
            f"{len(images)} check images, above {unknown_score.SCORE_TOLERANCE[precision]:.0e}; nothing was written"
        )
    _log(f"{precision} unknown_score vs Keras on {len(images)} images: max relative difference {difference:.2e}")
    return difference


def _convert_precision(proto, precision: str, calibration, check_images: np.ndarray, tmp: Path):
    """Convert the verified fp32 model and write it to `tmp`, or raise if it disagrees."""
    from training.precision import PRECISION_THRESHOLDS, PrecisionError, convert_and_check

    try:
        converted, agreement = convert_and_check(proto, precision, calibration, check_images)
    except PrecisionError as error:
        raise ExportError(f"{precision} export failed: {error}") from None
    tmp.write_bytes(converted.SerializeToString())
    _log(
        f"{precision} vs fp32 on {agreement.images} images: top-1 agreement "
        f"{agreement.top1_agreement:.2%} (needs {PRECISION_THRESHOLDS[precision]:.1%}), max probability "
        f"difference {agreement.max_probability_difference:.2e}"
    )
    return agreement, converted
