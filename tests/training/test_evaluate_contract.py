"""`convnet-train evaluate` reads an .onnx file by the app's rules (convnet_common/model_contract.py).

Before, evaluate had its own reader and accepted files the app refuses: labels without
`convnet_studio.format_version`, a dynamic height and width with an `input_size` entry,
a format version other than 1, a metadata file whose class output is not named
`probabilities`. Now both read with the one reader, and these tests hold evaluate to
the app's verdict on the same files. The models are the desktop tests' small ONNX
graphs (tests/desktop/onnx_factory.py), so no TensorFlow is needed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.core.model import ModelLoadError
from desktop.core.model import load_model as app_load_model
from training.evaluate import EvaluationError, evaluate
from training.model_source import load_model_to_score


def _factory():
    path = Path(__file__).resolve().parents[1] / "desktop" / "onnx_factory.py"
    spec = importlib.util.spec_from_file_location("evaluate_onnx_factory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


factory = _factory()
COLOURS = {"red": (220, 0, 0), "green": (0, 220, 0), "blue": (0, 0, 220)}


def _data(root: Path, names: dict[str, str] | None = None) -> Path:
    """Two mostly-red, -green and -blue images, in folders named by `names` (default: the colour)."""
    for colour, rgb in COLOURS.items():
        folder = root / (names or {}).get(colour, colour)
        folder.mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(factory.mostly(rgb), cv2.COLOR_RGB2BGR))
    return root


def _metadata(**changes: str) -> dict[str, str]:
    metadata = factory.full_metadata(factory.COLOUR_LABELS, 16)
    metadata.update(changes)
    return metadata


def test_a_full_model_is_scored_with_its_labels(tmp_path: Path) -> None:
    model = factory.save_model(tmp_path / "colours.onnx")
    result = evaluate(model, _data(tmp_path / "data"), report_dir=tmp_path / "report")
    assert result.labels == ["red", "green", "blue"] and result.accuracy == 1.0


def test_labels_without_format_version_are_generic_names_now(tmp_path: Path) -> None:
    """It used to take `labels` from any file; the app names a plain file's classes `class 0`, … and so does evaluate."""
    metadata = _metadata()
    del metadata["convnet_studio.format_version"]
    model = factory.save_model(tmp_path / "unmarked.onnx", metadata=metadata)
    assert load_model_to_score(model).labels == ["class 0", "class 1", "class 2"]
    assert app_load_model(model, provider="cpu").info.labels == ["class 0", "class 1", "class 2"]
    with pytest.raises(EvaluationError, match=r"does not know: blue, green, red\. The model's classes are: class 0"):
        evaluate(model, _data(tmp_path / "by-colour"), report_dir=tmp_path / "r1")
    generic = _data(tmp_path / "by-number", {"red": "class 0", "green": "class 1", "blue": "class 2"})
    assert evaluate(model, generic, report_dir=tmp_path / "r2").accuracy == 1.0


# Files the old evaluate reader accepted (or refused only while scoring) and the app refuses.
REFUSED = {
    "dynamic-spatial": (
        {"dynamic_spatial": True},
        r"fixed height and width; this file's input is uint8 \[N, H, W, 3\]",
    ),
    "format-version": (
        {"metadata": _metadata(**{"convnet_studio.format_version": "2"})},
        "model format version '2' is not supported",
    ),
    "label-count": (
        {"metadata": _metadata(labels=json.dumps(["a", "b"]))},
        "model metadata lists 2 labels but 'probabilities' has 3 classes",
    ),
    "renamed-output": (
        {"probabilities_name": "scores"},
        r"no 'probabilities' output \[N, classes\]; its outputs are: scores",
    ),
    "input-size": (
        {"metadata": _metadata(input_size="[32, 32]")},
        r"'input_size' is \[32, 32\] but the input tensor is \[16, 16\]",
    ),
    "giant-input": ({"size": 10_000, "metadata": None, "with_cam": False}, "at most 8,192 a side"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_app_refuses_evaluate_refuses_with_the_same_reason(tmp_path: Path, case: str) -> None:
    variant, expected = REFUSED[case]
    model = factory.save_model(tmp_path / f"{case}.onnx", **variant)
    with pytest.raises(ModelLoadError) as app:
        app_load_model(model, provider="cpu")
    with pytest.raises(EvaluationError) as scored:
        load_model_to_score(model)
    assert str(app.value) == f"{model.name}: " + str(scored.value).split(": ", 1)[1]
    assert str(scored.value).startswith(f"{model}: ")
    assert re.search(expected, str(scored.value)), str(scored.value)


def test_a_plain_file_gets_generic_names(tmp_path: Path) -> None:
    model = factory.save_model(tmp_path / "plain.onnx", metadata=None)
    loaded = load_model_to_score(model)
    assert loaded.labels == ["class 0", "class 1", "class 2"] and loaded.image_size == (16, 16)
    probabilities = loaded.predict(np.zeros((2, 16, 16, 3), np.uint8))
    assert probabilities.shape == (2, 3)


@pytest.mark.parametrize("kind", factory.HOSTILE_OUTPUTS)
def test_a_model_with_hostile_answers_gets_the_apps_verdict(tmp_path: Path, kind: str) -> None:
    """Evaluate test-runs a model at the app's batch sizes (1 and 2) and checks every answer:
    it used to run one image and check only shapes, so NaN, negative or one-row answers
    were scored (or crashed the scoring) where the app refuses the file at load."""
    import onnx

    model = tmp_path / f"{kind}.onnx"
    onnx.save(factory.hostile_output_model(kind), str(model))
    try:
        app_load_model(model, provider="cpu")
    except ModelLoadError as error:
        with pytest.raises(EvaluationError) as scored:
            load_model_to_score(model)
        assert str(error) == f"{model.name}: " + str(scored.value).split(": ", 1)[1]
    else:
        load_model_to_score(model)  # what the app accepts at load (nan_on_red: a black image is fine), so does evaluate


@pytest.mark.parametrize("kind", ["runtime_constant_of_shape", "resize", "pad"])
def test_a_model_that_explodes_when_run_is_refused_by_evaluate_before_it_runs_here(tmp_path: Path, kind: str) -> None:
    """Evaluate runs an .onnx's first batch in the same guarded child as the app (convnet_common/
    model_probe.py), at evaluate's own batch size: gigabytes asked for at run time are a refusal."""
    import resource

    model = tmp_path / f"{kind}.onnx"
    model.write_bytes(factory.exploding_model(kind).SerializeToString())
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(EvaluationError, match=rf"^{kind}\.onnx was refused: its test run needed more than [\d.]+ GB"):
        load_model_to_score(model, batch_size=64)
    # this process never ran the graph: its peak stayed where it was (the child took the hit)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024
