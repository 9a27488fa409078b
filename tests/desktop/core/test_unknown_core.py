"""The unknown score in desktop.core and convnet-classify (issue 14): verdicts, exports, sorting, settings.

The model (onnx_factory.build_unknown_model) scores an image by its mean brightness:
white is unknown at the 0.4 threshold, red and mostly-dark images are known.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import onnx_factory
import pytest

from convnet_common.unknown_score import accepted_share
from desktop import undo_sort_cli
from desktop.classify_cli import main as classify
from desktop.core.batch import BatchResult, run_batch
from desktop.core.classifier import Classifier
from desktop.core.exporters import CSV, JSON, ExportContext
from desktop.core.model import ModelLoadError, load_model
from desktop.core.results_io import BatchState, result_from_dict, result_to_dict
from desktop.core.settings import Settings
from desktop.core.sorting import UNKNOWN_DIR, UNSURE_DIR, sort_into_folders

WHITE, RED, DARK = (255, 255, 255), (255, 0, 0), (20, 20, 20)


@pytest.fixture(scope="module")
def unknown_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_factory.save_unknown_model(tmp_path_factory.mktemp("unknown") / "unknown.onnx")


@pytest.fixture
def folder(tmp_path: Path, write_png) -> Path:
    images = tmp_path / "images"
    write_png("white.png", onnx_factory.solid_image(WHITE), images)
    write_png("red.png", onnx_factory.mostly(RED), images)
    write_png("dark.png", onnx_factory.solid_image(DARK), images)
    return images


def _by_name(results) -> dict[str, BatchResult]:
    return {r.path.name: r for r in results}


def test_loaded_model_exposes_score_and_threshold(unknown_model: Path, colour_model: Path) -> None:
    model = load_model(unknown_model, provider="cpu")
    assert model.has_unknown_score and model.unknown_threshold == pytest.approx(0.4)
    assert model.info.unknown.method == "mean-brightness" and len(model.info.unknown.quantiles) == 101
    assert model.info.calibration == {
        "method": "temperature",
        "temperature": 1.7,
        "ece_before": 0.081,
        "ece_after": 0.023,
    }
    assert len(model.info.sha256) == 64
    model.set_threshold_override(0.9)
    assert model.unknown_threshold == 0.9
    model.set_threshold_override(None)
    assert model.unknown_threshold == pytest.approx(0.4)
    plain = load_model(colour_model, provider="cpu")
    assert not plain.has_unknown_score and plain.unknown_threshold is None and plain.info.unknown is None


def test_predictions_carry_score_and_verdict(unknown_model: Path, colour_model: Path) -> None:
    classifier = Classifier(load_model(unknown_model, provider="cpu"))
    white, red = classifier.classify_batch([onnx_factory.solid_image(WHITE), onnx_factory.mostly(RED)])
    assert white.unknown is True and white.unknown_score == pytest.approx(1.0)
    assert red.unknown is False and 0.1 < red.unknown_score < 0.4
    assert white.top_label is not None  # the nearest classes are still there
    plain = Classifier(load_model(colour_model, provider="cpu")).classify_image(onnx_factory.solid_image(WHITE))
    assert plain.unknown is None and plain.unknown_score is None


def test_nan_score_is_an_error_for_that_image_and_nan_always_is_refused(tmp_path: Path) -> None:
    path = onnx_factory.save_unknown_model(tmp_path / "nan-white.onnx", score="nan_on_white")
    classifier = Classifier(load_model(path, provider="cpu"))
    white, red = classifier.classify_batch([onnx_factory.solid_image(WHITE), onnx_factory.mostly(RED)])
    assert not white.ok and "unknown score is not a finite number" in white.error and white.unknown is None
    assert red.ok and red.unknown is False
    with pytest.raises(ModelLoadError, match="unknown score is not a finite number"):
        load_model(onnx_factory.save_unknown_model(tmp_path / "nan.onnx", score="nan"), provider="cpu")


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"threshold": "high"}, "finite number 'threshold'"),
        ({"quantiles": [0.1] * 100}, "101 finite numbers"),
        ({"quantiles": list(reversed(onnx_factory.UNKNOWN_QUANTILES))}, "must not decrease"),
        ({"accept_rate": 2}, "accept_rate"),
    ],
)
def test_malformed_unknown_metadata_is_refused(tmp_path: Path, changes: dict, words: str) -> None:
    model = onnx_factory.build_unknown_model()
    for entry in model.metadata_props:
        if entry.key == "unknown":
            entry.value = onnx_factory.unknown_metadata(**changes)
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelLoadError, match=words):
        load_model(path, provider="cpu")


def test_accepted_share_interpolates_the_quantiles() -> None:
    quantiles = onnx_factory.UNKNOWN_QUANTILES
    assert accepted_share(quantiles, -1.0) == 0.0 and accepted_share(quantiles, 5.0) == 1.0
    assert accepted_share(quantiles, 0.21) == pytest.approx(0.5)
    assert accepted_share(quantiles, 0.4) == pytest.approx(0.4 / 0.42)
    assert accepted_share([0.0] * 50 + [1.0] * 51, 0.0) == pytest.approx(0.49)  # a flat run counts to its top


def test_batch_results_and_exports_have_the_unknown_columns(unknown_model: Path, folder: Path, tmp_path: Path) -> None:
    classifier = Classifier(load_model(unknown_model, provider="cpu"))
    results = [r for chunk in run_batch(classifier, [folder], batch_size=2, workers=1) for r in chunk]
    rows = _by_name(results)
    assert rows["white.png"].unknown is True and rows["red.png"].unknown is False and rows["dark.png"].unknown is False
    text = CSV.render(results, ExportContext())
    assert text.splitlines()[0] == "path,label,confidence,top_k,error,unknown,unknown_score"
    table = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(text))}
    assert table["white.png"]["unknown"] == "true" and float(table["white.png"]["unknown_score"]) == pytest.approx(1.0)
    assert table["red.png"]["unknown"] == "false"
    document = json.loads(JSON.render(results, ExportContext(model=str(unknown_model))))
    items = {Path(i["path"]).name: i for i in document["results"]}
    assert items["white.png"]["unknown"] is True and items["dark.png"]["unknown"] is False
    assert items["white.png"]["unknown_score"] == pytest.approx(1.0)
    # the resume state keeps score and verdict; a changed threshold re-judges the same score
    back = result_from_dict(result_to_dict(rows["red.png"]))
    assert back == rows["red.png"]
    assert back.judged(0.1).unknown is True and back.judged(None) is back


def test_plain_model_has_empty_unknown_cells(colour_model: Path, folder: Path) -> None:
    classifier = Classifier(load_model(colour_model, provider="cpu"))
    results = [r for chunk in run_batch(classifier, [folder], batch_size=2, workers=1) for r in chunk]
    assert all(r.unknown is None and r.unknown_score is None for r in results)
    table = list(csv.DictReader(io.StringIO(CSV.render(results, ExportContext()))))
    assert all(row["unknown"] == "" and row["unknown_score"] == "" for row in table)
    items = json.loads(JSON.render(results, ExportContext()))["results"]
    assert all(item["unknown"] is None and item["unknown_score"] is None for item in items)


def test_saved_state_with_bad_unknown_fields_is_refused(tmp_path: Path) -> None:
    good = {"path": "/x/a.png", "label": "red", "confidence": 0.9, "top_k": [["red", 0.9]], "error": None}
    for bad in ({"unknown_score": "1"}, {"unknown_score": float("nan")}, {"unknown_score": 0.5, "unknown": "yes"}):
        with pytest.raises(TypeError):
            result_from_dict({**good, **bad})
    assert result_from_dict({**good, "unknown": True}).unknown is None  # a verdict without a score is no verdict


def test_sort_puts_unknown_into_its_folder_before_unsure_and_undo_restores(tmp_path: Path, capsys) -> None:
    source = tmp_path / "src"
    source.mkdir()
    files = {name: source / f"{name}.png" for name in ("known", "unsure", "unknown", "unknown_unsure")}
    for name, path in files.items():
        path.write_bytes(name.encode())
    results = [
        BatchResult(files["known"], "cat", 0.9, (("cat", 0.9),), None, 0.1, False),
        BatchResult(files["unsure"], "cat", 0.2, (("cat", 0.2),), None, 0.1, False),
        BatchResult(files["unknown"], "cat", 0.9, (("cat", 0.9),), None, 0.8, True),
        BatchResult(files["unknown_unsure"], "cat", 0.2, (("cat", 0.2),), None, 0.8, True),
    ]
    dest = tmp_path / "dest"
    report = sort_into_folders(results, dest, threshold=0.5, move=True)
    placed = {src.stem: dst.parent.name for src, dst in report.placed}
    assert placed == {"known": "cat", "unsure": UNSURE_DIR, "unknown": UNKNOWN_DIR, "unknown_unsure": UNKNOWN_DIR}
    again = sort_into_folders(results[2:], dest, threshold=0.5)  # DEST's own _unknown is not new input
    assert again.placed == [] and len(again.left_in_dest) == 0
    assert undo_sort_cli.main([str(dest)]) == 0
    capsys.readouterr()
    assert all(path.read_bytes() == name.encode() for name, path in files.items())


def test_cli_csv_json_sort_and_settings_override(
    unknown_model: Path, colour_model: Path, folder: Path, tmp_path: Path, capsys
) -> None:
    out_json, out_csv, dest = tmp_path / "out.json", tmp_path / "out.csv", tmp_path / "sorted"
    args = [str(folder), "--model", str(unknown_model), "--provider", "cpu", "--batch-size", "2"]
    assert classify([*args, "--json", str(out_json), "--csv", str(out_csv), "--sort-into", str(dest)]) == 0
    _, err = capsys.readouterr()
    table = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(out_csv.read_text()))}
    assert table["white.png"]["unknown"] == "true" and table["red.png"]["unknown"] == "false"
    assert "classified 3 images, 0 failed, 1 unknown (score over 0.4)" in err
    items = {Path(i["path"]).name: i for i in json.loads(out_json.read_text())["results"]}
    assert items["white.png"]["unknown"] is True
    assert (dest / UNKNOWN_DIR / "white.png").exists() and not (dest / UNKNOWN_DIR / "red.png").exists()

    # The app's per-model threshold (by SHA-256) applies to the CLI as well.
    settings = Settings.load()
    settings.set_unknown_threshold(load_model(unknown_model, provider="cpu").info.sha256, 0.05)
    assert settings.save() is None
    assert classify(args) == 0
    out, err = capsys.readouterr()
    assert {r["unknown"] for r in csv.DictReader(io.StringIO(out))} == {"true"}

    assert classify([str(folder), "--model", str(colour_model), "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert {(r["unknown"], r["unknown_score"]) for r in csv.DictReader(io.StringIO(out))} == {("", "")}
    assert "unknown" not in err


def test_settings_threshold_table_is_validated(tmp_path: Path) -> None:
    sha, other = "a" * 64, "b" * 64
    path = tmp_path / "settings.json"
    stored = {sha: 0.3, other: True, "not-a-hash": 0.2, "c" * 64: "0.5", "d" * 64: 1e999, "e" * 64: 7}
    path.write_text(json.dumps({"unknown_thresholds": stored}).replace("Infinity", "1e999"))
    settings = Settings.load(path)
    assert settings.values["unknown_thresholds"] == {sha: 0.3, "e" * 64: 7.0}
    assert settings.unknown_threshold(sha) == 0.3 and settings.unknown_threshold(other) is None
    path.write_text(json.dumps({"unknown_thresholds": [1, 2]}))
    assert Settings.load(path).values["unknown_thresholds"] == {}
    settings.set_unknown_threshold(sha, None)
    assert settings.unknown_threshold(sha) is None
    with pytest.raises(ValueError):
        settings.set_unknown_threshold(sha, float("nan"))
    with pytest.raises(ValueError):
        settings.set_unknown_threshold("../x", 0.2)
    assert np.isfinite(list(settings.values["unknown_thresholds"].values())).all()


def test_resumed_state_keeps_scores(unknown_model: Path, folder: Path, tmp_path: Path) -> None:
    classifier = Classifier(load_model(unknown_model, provider="cpu"))
    state = BatchState.load(tmp_path / "state", folder, unknown_model)
    for chunk in run_batch(classifier, [folder], batch_size=3, workers=1):
        state.add(chunk)
    state.save()
    again = BatchState.load(tmp_path / "state", folder, unknown_model)
    assert {Path(k).name: r.unknown for k, r in again.finished.items()} == {
        "white.png": True,
        "red.png": False,
        "dark.png": False,
    }
