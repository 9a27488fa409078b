"""The bad-image corpus through the headless entry points: the batch engine and
`convnet-classify` (the drop zone and the Batch tab are in
tests/desktop/qt/test_bad_images_window.py). Each bad file gets one clear message naming
what is wrong, every good file is classified (upright, transparency composited), and
nothing crashes or hangs (every wait has a timeout).

Permission denied is simulated at os.open (tests run as root; see tests/bad_images.py);
the deleted file is deleted for real, after the run listed it and before its turn.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_images import (
    BLUE as BLUE_RGB,
)
from bad_images import (
    UNREADABLE,
    VANISHING,
    Case,
    add_vanishing_file,
    build_corpus,
    deny_reading,
    encode,
    file_cases,
    mostly,
    vanish_on_first_read,
)

from desktop.classify_cli import main
from desktop.core.batch import BatchResult, classify_paths, run_batch
from desktop.core.classifier import Classifier, Prediction
from desktop.core.model import load_model

REPO = Path(__file__).resolve().parents[3]
GREEN, BLUE = 1, 2  # class indices of the colour model


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Case]]:
    """The corpus plus a file that vanishes mid-run; reading `unreadable.jpg` is refused."""
    folder = tmp_path / "corpus"
    cases = build_corpus(folder)
    cases[VANISHING] = add_vanishing_file(folder)
    deny_reading(monkeypatch, [folder / UNREADABLE])
    return folder, cases


def _problems_with(path: Path, case: Case, label: str | None, error: str | None) -> list[str]:
    """What is wrong with one file's outcome (an empty list when it is as the case says)."""
    if case.must_fail:
        if error is None:
            return [f"{case.name}: classified as {label}, but must fail with {case.words}"]
        missing = [word for word in case.words if word not in error]
        if missing or "\n" in error or str(path) not in error:
            return [f"{case.name}: message {error!r} must be one line naming the file, with {case.words}"]
        return []
    if error is not None:
        return [f"{case.name}: failed: {error}"]
    if case.colour is not None and label != case.colour:
        return [f"{case.name}: classified as {label}, not {case.colour}"]
    return []


def _check_results(folder: Path, cases: dict[str, Case], results: dict[Path, tuple[str | None, str | None]]) -> None:
    """Exactly one outcome per file, each as its case says."""
    expected_cases = file_cases(cases)
    expected = {folder / name for name in expected_cases}
    assert set(results) == expected, f"missing {expected - set(results)}, extra {set(results) - expected}"
    problems = []
    for name, case in expected_cases.items():
        problems += _problems_with(folder / name, case, *results[folder / name])
    assert not problems, "\n".join(problems)


def _upright_problems(case: Case, prediction: Prediction) -> list[str]:
    """The picture kept for display is the upright one; for the EXIF cases, so is the model input."""
    if case.upright is None or prediction.image is None:
        return []
    image = prediction.image
    if image.shape != case.upright.shape:
        return [f"{case.name}: shown as {image.shape[:2]}, upright is {case.upright.shape[:2]}"]
    if np.abs(image.astype(int) - case.upright.astype(int)).mean() > case.tolerance:
        return [f"{case.name}: the picture shown is not the upright one"]
    if case.name.startswith("exif") and prediction.cam is not None:
        # The map comes from the model input: green must light up top-left, blue bottom-right.
        green = np.unravel_index(np.argmax(prediction.cam[..., GREEN]), prediction.cam.shape[:2])
        blue = np.unravel_index(np.argmax(prediction.cam[..., BLUE]), prediction.cam.shape[:2])
        if (tuple(map(int, green)), tuple(map(int, blue))) != ((0, 0), (3, 3)):
            return [f"{case.name}: the network saw the picture turned (green at {green}, blue at {blue})"]
    return []


# --- the batch engine ---------------------------------------------------------------------------


def test_batch_engines_survive_a_file_deleted_from_the_progress_callback(colour_model: Path, corpus) -> None:
    folder, cases = corpus
    classifier = Classifier(load_model(colour_model, provider="cpu"))
    victim = folder / VANISHING
    deleted: list[int] = []

    def delete_once(done: int) -> None:
        if not deleted:
            victim.unlink()
            deleted.append(done)

    # classify_paths (drops, the Classify view) reports after every chunk: delete mid-run.
    predictions = list(
        classify_paths(classifier, [folder], batch_size=2, progress=lambda done, total: delete_once(done))
    )
    assert deleted == [2]
    _check_results(folder, cases, {p.path: (p.top_label, p.error) for p in predictions})

    # run_batch (Batch tab, CLI) reports once the folder is listed, then every 50 ms: delete
    # on its first report, after listing and before any file is read.
    victim.write_bytes(b"")
    deleted.clear()
    batches = run_batch(classifier, [folder], batch_size=2, workers=1, progress=lambda update: delete_once(update.done))
    results: list[BatchResult] = [result for batch in batches for result in batch]
    assert deleted == [0]
    assert [r.path for r in results] == sorted(r.path for r in results)  # in file order, each once
    _check_results(folder, cases, {r.path: (r.label, r.error) for r in results})


# --- convnet-classify ---------------------------------------------------------------------------


def test_cli_gives_one_stderr_line_per_bad_file(
    colour_model: Path, corpus, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cases = corpus
    vanish_on_first_read(monkeypatch, folder / VANISHING)
    code = main([str(folder), "--model", str(colour_model), "--provider", "cpu", "--batch-size", "3"])
    out, err = capfd.readouterr()  # file descriptors: OpenCV's own logging would show up here
    assert code == 1
    rows = {Path(row["path"]): row for row in csv.DictReader(io.StringIO(out))}
    _check_results(folder, cases, {p: (r["label"] or None, r["error"] or None) for p, r in rows.items()})

    lines = err.splitlines()
    bad = [folder / name for name, case in file_cases(cases).items() if case.must_fail]
    assert len(lines) == len(bad) + 1, err  # one per bad file, then the summary
    for path in bad:
        (line,) = [line for line in lines if line.startswith(f"convnet-classify: {path}: ")]
        assert line == f"convnet-classify: {path}: {rows[path]['error'][len(str(path)) + 2 :]}"
    assert lines[-1].startswith(f"classified {len(rows) - len(bad)} images, {len(bad)} failed")


def test_cli_subprocess_with_dash_names_after_double_dash(colour_model: Path, corpus) -> None:
    """A real process: `--` lets a name start with a dash, and stderr holds only our lines."""
    folder, _ = corpus
    command = [
        sys.executable,
        "-m",
        "desktop.classify_cli",
        "--model",
        str(colour_model),
        "--provider",
        "cpu",
        "--",
        "-leading-dash.png",
        "grün ä 日本.png",
        "truncated.png",
        "huge.bmp",
        "bad crc.png",
        "stray bytes.jpg",
    ]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    labels = {row["path"]: row["label"] for row in csv.DictReader(io.StringIO(result.stdout))}
    # A cell starting with "-" is written "'-..." so spreadsheets do not run it (CSV injection).
    assert labels == {
        "'-leading-dash.png": "blue",
        "grün ä 日本.png": "green",
        "truncated.png": "",
        "huge.bmp": "",
        "bad crc.png": "",
        "stray bytes.jpg": "red",
    }
    # libpng and libjpeg have their own say about the last two on descriptor 2: not here.
    assert result.stderr.splitlines()[:-1] == [
        "convnet-classify: truncated.png: not a readable image: corrupt or truncated PNG data",
        "convnet-classify: huge.bmp: the image is 100000 x 100000 pixels, above the limit of 120 megapixels",
        "convnet-classify: bad crc.png: not a readable image: corrupt or truncated PNG data",
    ]
    # Without `--` the dash name is an option, refused as a usage error before anything runs.
    refused = subprocess.run(
        command[:7] + ["truncated.png", "-leading-dash.png"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert refused.returncode == 2 and "unrecognized arguments: -leading-dash.png" in refused.stderr


def _non_utf8_name(folder: Path) -> Path:
    """A good picture whose file name is not valid UTF-8 (Linux allows any bytes but '/')."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png"))
        path.write_bytes(encode(mostly(BLUE_RGB), "PNG"))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    return path


def test_cli_survives_a_file_name_that_is_not_utf8(colour_model: Path, tmp_path: Path, capsys) -> None:
    path = _non_utf8_name(tmp_path / "latin1")
    out_csv = tmp_path / "out.csv"
    code = main([str(path.parent), "--model", str(colour_model), "--provider", "cpu", "--csv", str(out_csv)])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out_csv.read_bytes().decode("utf-8", "surrogateescape"))))
    assert [(Path(row["path"]), row["label"]) for row in rows] == [(path, "blue")]  # the name's own bytes
    out_json = tmp_path / "out.json"
    code = main([str(path.parent), "--model", str(colour_model), "--provider", "cpu", "--json", str(out_json)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:  # the JSON writer cannot store the name as text: one clear line, no file
        assert "cannot write output: a file name is not valid UTF-8 (b'\\xe9'" in err
        assert not out_json.exists()
    else:  # or it stores it escaped
        assert code == 0 and json.loads(out_json.read_text())["results"][0]["label"] == "blue"
