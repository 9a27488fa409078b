"""Section 1: one dropped image, from file to the overlay the Classify tab shows.

Three things are timed on the same 640×480 JPEG:
- the app's path: `classify_paths` (decode, resize, inference with the activation maps)
  followed by `overlay` of the top class's map, as the Classify tab does;
- its floor: a bare `session.run` on an already prepared uint8 tensor (all outputs, as
  the app asks for them) plus, separately, the decode cost (`load_image_rgb` +
  `resize_for_model`);
- the course notes' Keras path (`load_img` … `model.predict`), in a subprocess.
The app and its floor run in this process in interleaved rounds; Keras runs right after
in its own process, so TensorFlow's threads never overlap the other timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import interleaved_timings, median, run_json_worker
from benchmarks.report import Row, at_least, at_most, ratio, seconds
from convnet_common.imaging import load_image_rgb, resize_for_model
from desktop.core.activation import overlay
from desktop.core.batch import classify_paths
from desktop.core.classifier import Classifier
from desktop.core.model import load_model

APP_OVER_FLOOR_TARGET = 1.3  # app ≤ 1.3 × (raw run + decode)
KERAS_OVER_APP_TARGET = 10.0  # Keras one-image path ≥ 10 × the app's


def app_path_call(classifier: Classifier, jpeg: Path):
    """What the Classify tab does for one dropped file: classify, then blend the top map."""

    def call() -> np.ndarray | None:
        prediction = next(classify_paths(classifier, [jpeg]))
        if prediction.error is not None:
            raise RuntimeError(prediction.error)
        if prediction.cam is None:  # models without activation maps show the plain image
            return prediction.image
        return overlay(prediction.image, prediction.cam[..., prediction.top_index], 0.5)

    return call


def measure(
    model_path: Path, jpeg: Path, rounds: int, runs_per_round: int, skip_keras: str | None = None
) -> dict[str, Any]:
    """Median seconds per call for the app path, the bare run, the decode and Keras.

    `skip_keras`, when given, is why the Keras side is not run.
    """
    model = load_model(model_path, provider="cpu")
    classifier = Classifier(model)
    height, width = model.info.input_size
    prepared = resize_for_model(load_image_rgb(jpeg), height, width)[None]
    session, feed = model.session, {model.input_name: np.ascontiguousarray(prepared)}

    times = interleaved_timings(
        {
            "app": app_path_call(classifier, jpeg),
            # None asks for every output: the probabilities and the activation maps the app shows.
            "raw_run": lambda: session.run(None, feed),
            "decode": lambda: resize_for_model(load_image_rgb(jpeg), height, width),
        },
        rounds=rounds,
        runs_per_round=runs_per_round,
    )
    result: dict[str, Any] = {
        "model": model_path.name,
        "input_size": [height, width],
        "has_activation_maps": model.info.has_cam,
        "runs_each": rounds * runs_per_round,
        "rounds": rounds,
        "app_s": median(times["app"]),
        "raw_run_s": median(times["raw_run"]),
        "decode_s": median(times["decode"]),
    }
    result["app_over_floor"] = result["app_s"] / (result["raw_run_s"] + result["decode_s"])
    if skip_keras is not None:
        result["keras_skipped"] = skip_keras
    else:
        runs = rounds * runs_per_round
        keras_times = run_json_worker(
            ["-m", "benchmarks.keras_worker", "single", "--image", str(jpeg), "--runs", str(runs), "--warmup", "1"],
            timeout=1800,
        )["times_s"]
        # The app path again, right after Keras: the machine's speed drifts over a minute,
        # so Keras is compared with app timings taken on both sides of it.
        after = interleaved_timings(
            {"app": app_path_call(classifier, jpeg)}, rounds=rounds, runs_per_round=runs_per_round
        )["app"]
        result["keras_s"] = median(keras_times)
        result["app_after_keras_s"] = median(after)
        result["app_around_keras_s"] = median(times["app"] + after)
        result["keras_over_app"] = result["keras_s"] / result["app_around_keras_s"]
    return result


def keras_target_reason(result: dict[str, Any]) -> str:
    """For a missed ≥ 10× Keras: how far the floor alone (bare run + decode) is from the target."""
    needed = result["keras_s"] / KERAS_OVER_APP_TARGET
    floor = result["raw_run_s"] + result["decode_s"]
    text = (
        f"{ratio(KERAS_OVER_APP_TARGET)} faster than Keras's {seconds(result['keras_s'])} means "
        f"{seconds(needed)} per image; the app took {seconds(result['app_around_keras_s'])}, "
        f"{ratio(result['app_over_floor'])} of the bare run plus decode ({seconds(floor)})."
    )
    if floor > needed:
        text += " The bare run plus decode alone are above that in this run, so no app path could reach it here."
    return text


TITLE = "Single image"
METHOD = """\
A dropped photo to its activation-map overlay, on one generated 640×480 JPEG.
**App path**: `next(classify_paths(classifier, [jpeg]))` (decode, resize, one inference
with the activation maps) then `overlay(image, cam[..., top], 0.5)`, what the Classify
tab does for a dropped file. **Floor**: a bare `session.run` of every output on an
already prepared uint8 [1, H, W, 3] tensor, plus the decode (`load_image_rgb` +
`resize_for_model`) timed on its own. **Keras**: the course notes' path,
`keras.utils.load_img(path, target_size=(224, 224))` → `img_to_array` → `expand_dims` →
`mobilenet_v2.preprocess_input` → `model.predict(x, verbose=0)` with
`keras.applications.MobileNetV2(weights=None)`. App, run and decode alternate in rounds
in one process (CPU provider) after one warm-up each; Keras runs right after, in its own
process, as many times after one warm-up, and the app path is timed again after it:
Keras ÷ app uses the app's timings from before and after together, so a drift of the
machine's speed during the Keras run does not count for or against either. Medians."""


def rows(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    height, width = result["input_size"]
    table = [
        Row("app path: classify_paths + overlay", seconds(result["app_s"])),
        Row(f"bare session.run, prepared 1×{height}×{width}×3 tensor", seconds(result["raw_run_s"])),
        Row("decode: load_image_rgb + resize_for_model", seconds(result["decode_s"])),
        at_most(
            "app ÷ (bare run + decode)",
            result["app_over_floor"],
            ratio(result["app_over_floor"]),
            APP_OVER_FLOOR_TARGET,
            ratio(APP_OVER_FLOOR_TARGET),
        ),
    ]
    notes = [f"Model {result['model']}; {result['runs_each']} timed runs of each in {result['rounds']} rounds."]
    if "keras_s" in result:
        table += [
            Row("Keras path: load_img … model.predict", seconds(result["keras_s"])),
            Row("app path, before and after Keras together", seconds(result.get("app_around_keras_s"))),
            at_least(
                "Keras ÷ app",
                result["keras_over_app"],
                ratio(result["keras_over_app"]),
                KERAS_OVER_APP_TARGET,
                ratio(KERAS_OVER_APP_TARGET),
            ),
        ]
        table[-1].why = keras_target_reason(result)
    else:
        notes.append(f"Keras comparison not run: {result.get('keras_skipped', 'skipped')}.")
    if not result["has_activation_maps"]:
        notes.append("This model has no activation maps, so the app path shows the plain image (no overlay).")
    return table, notes
