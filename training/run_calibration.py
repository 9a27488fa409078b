"""A run's temperature (training.calibration): fitted when training ends, or later for an old run.

Training fits it on the validation split right after the last stage and stores it in
RUN_DIR/result.json as "calibration". A run finished before calibration existed has no
such entry; `convnet-train export` then fits it the same way, from the same validation
split (split.json) and best checkpoint, and adds it to result.json (one atomic rewrite
that changes no other key), so the run, its evaluations and every later export agree
on one T instead of refitting it each time.
"""

from __future__ import annotations

import json
import sys
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convnet_common.atomic import write_text_atomic
from convnet_common.imaging import ImageReadError, load_image_for_model
from convnet_common.run_layout import RunFolder
from training.calibration import Calibration, fit_calibration
from training.data import Sample

RESULT_KEY = "calibration"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# One scoring model per classifier: calibration and the validation report then share one
# traced predict function (a second model traced again: about 1.6 s for MobileNetV2 here).
_SCORING_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scoring_model(classifier):
    """float pixels -> [probabilities, logits], re-calling the classifier's own layers (no
    copy of the weights); training.evaluate.keras_predict_fn reads the first output."""
    model = _SCORING_MODELS.get(classifier)
    if model is None:
        import keras

        from training.model_builder import features_and_logits

        pixels = keras.Input(classifier.input_shape[1:], name="pixels")
        _, logits, probabilities = features_and_logits(classifier, pixels)
        model = _SCORING_MODELS[classifier] = keras.Model(pixels, [probabilities, logits])
    return model


def logits_of(classifier, samples: Sequence[Sample], image_size: int, batch_size: int = 64, decode=None):
    """(logits, labels) of the readable samples; a file gone or broken since the split is left out.
    `decode`: a stand-in for load_image_for_model (training.decoded_cache.DecodedStore.reader)."""
    decode = decode or load_image_for_model
    model = scoring_model(classifier)
    chunks, labels = [], []
    for start in range(0, len(samples), batch_size):
        images = []
        for sample in samples[start : start + batch_size]:
            try:
                images.append(decode(sample.path, image_size, image_size))
            except ImageReadError:
                continue
            labels.append(sample.label)
        if images:
            _, logits = model.predict_on_batch(np.stack(images).astype(np.float32))
            chunks.append(np.asarray(logits, np.float64))
    classes = int(model.output_shape[1][-1])
    logits = np.concatenate(chunks) if chunks else np.zeros((0, classes))
    return logits, np.asarray(labels, dtype=np.int64)


def fit_run_calibration(classifier, val_samples: Sequence[Sample], image_size: int, decode=None) -> Calibration:
    logits, truth = logits_of(classifier, val_samples, image_size, decode=decode)
    calibration = fit_calibration(logits, truth)
    if calibration.method == "temperature":
        _log(
            f"calibration: temperature {calibration.temperature:.3f} fitted on {calibration.images} validation "
            f"images; ECE {calibration.ece_before:.4f} -> {calibration.ece_after:.4f}, "
            f"NLL {calibration.nll_before:.4f} -> {calibration.nll_after:.4f}"
        )
    else:
        _log(f"calibration: temperature kept at 1 ({calibration.reason})")
    return calibration


def stored_calibration(result: dict) -> Calibration | None:
    """result.json's entry, or None when the run predates calibration or the entry is unusable."""
    if RESULT_KEY not in result:
        return None
    try:
        return Calibration.from_dict(result[RESULT_KEY])
    except (TypeError, ValueError) as error:
        _log(f"calibration in result.json ignored ({error}); fitting it again")
        return None


def calibration_for_export(run_dir: Path, classifier, result: dict, split: dict) -> Calibration:
    """The run's stored temperature, or (an older run) one fitted now and added to result.json."""
    stored = stored_calibration(result)
    if stored is not None:
        return stored
    _log("this run has no calibration (it predates it): fitting a temperature on its validation split")
    val = [Sample(path, label) for path, label in split["val"]]
    calibration = fit_run_calibration(classifier, val, int(result["image_size"]))
    folder = RunFolder(run_dir)
    current = json.loads(folder.result.read_text(encoding="utf-8"))
    current[RESULT_KEY] = calibration.to_dict()
    write_text_atomic(folder.result, json.dumps(current, indent=2))
    result[RESULT_KEY] = current[RESULT_KEY]
    return calibration
