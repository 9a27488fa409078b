"""One image, one answer: Classify, Compare and convnet-classify score a file identically.

A large photo-like JPEG is the case that once split them: Classify and the CLI decode it
for the model at a reduced size inside libjpeg (decode_for_model), while Compare resized
the full decoded picture and scored 52.3 % where the others said 52.6 %.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop.classify_cli import main as classify_cli
from desktop.qt.compare_view import CompareView
from desktop.qt.main_window import MainWindow

WAIT_MS = 10_000


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 1600x1200 JPEG with gradients, texture and noise: large enough for a reduced decode."""
    rng = np.random.default_rng(11)
    height, width = 1200, 1600
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([xx * 255 / width, yy * 255 / height, 128 + 100 * np.sin(xx / 37 + yy / 53)], axis=-1)
    rgb += rng.normal(0, 40, rgb.shape)
    path = tmp_path / "cat photo.jpg"
    bgr = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def _by_label(top_k) -> dict[str, float]:
    return {str(name): float(p) for name, p in top_k}


def _same(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for name in a:  # float32 outputs: equal to within a rounding step, nothing more
        assert a[name] == pytest.approx(b[name], rel=1e-6, abs=1e-7), (name, a, b)


def test_classify_compare_and_cli_agree_on_a_photo(
    qtbot, window: MainWindow, colour_model: Path, photo: Path, tmp_path: Path
) -> None:
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(colour_model)
    window.open_images([photo])
    qtbot.waitUntil(lambda: window.classify_view.current is not None, timeout=WAIT_MS)
    classify = _by_label(window.classify_view.current.top_k)

    compare = window.view(CompareView)
    second = tmp_path / "second copy.onnx"
    shutil.copy(colour_model, second)
    window.tabs.setCurrentWidget(compare)
    compare.load_second_model(second)
    sides = (compare.left, compare.right)
    qtbot.waitUntil(
        lambda: (
            all(s.prediction is not None and s.classifier is not None for s in sides)
            and compare.second_model is not None
            and sides[1].prediction.ok
        ),
        timeout=WAIT_MS,
    )
    for side in sides:
        _same(_by_label(side.prediction.top_k), classify)

    out = tmp_path / "cli.json"
    assert classify_cli([str(photo), "--model", str(colour_model), "--provider", "cpu", "--json", str(out)]) == 0
    [row] = json.loads(out.read_text())["results"]
    _same(_by_label(row["top_k"]), classify)


def test_a_file_dropped_on_compare_scores_as_in_classify(
    qtbot, window: MainWindow, colour_model: Path, photo: Path
) -> None:
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(colour_model)
    window.open_images([photo])
    qtbot.waitUntil(lambda: window.classify_view.current is not None, timeout=WAIT_MS)
    classify = _by_label(window.classify_view.current.top_k)

    compare = window.view(CompareView)
    window.tabs.setCurrentWidget(compare)
    compare.left.prediction = None
    compare.image = None
    compare.preview.files_dropped.emit([photo])
    qtbot.waitUntil(lambda: compare.left.prediction is not None, timeout=WAIT_MS)
    _same(_by_label(compare.left.prediction.top_k), classify)
    qtbot.waitUntil(lambda: compare.image is not None, timeout=WAIT_MS)  # the preview, decoded off the GUI thread
    assert compare.image.shape[:2] == (1200, 1600)


def test_an_unreadable_file_dropped_on_compare_says_why(
    qtbot, window: MainWindow, colour_model: Path, tmp_path: Path
) -> None:
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(colour_model)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a picture")
    window.tabs.setCurrentWidget(window.view(CompareView))
    window.view(CompareView).preview.files_dropped.emit([broken])
    qtbot.waitUntil(lambda: "Could not read broken.jpg" in window.view(CompareView).status.text(), timeout=WAIT_MS)
    assert window.view(CompareView).left.prediction is not None and not window.view(CompareView).left.prediction.ok


def test_compare_shows_names_from_files_as_text(qtbot, window: MainWindow, colour_model: Path, tmp_path: Path) -> None:
    """A model or image file name is text, even when it looks like markup."""
    second = tmp_path / "<i>tricky.onnx"
    shutil.copy(colour_model, second)
    compare = window.view(CompareView)
    window.tabs.setCurrentWidget(compare)
    compare.load_second_model(second)
    qtbot.waitUntil(lambda: compare.second_model is not None, timeout=WAIT_MS)
    assert "<i>tricky.onnx" in compare.right.name.text() and compare.right.name.textFormat() == Qt.TextFormat.PlainText
    broken = tmp_path / "<b>bold.jpg"
    broken.write_text("not a picture")
    compare.preview.files_dropped.emit([broken])
    qtbot.waitUntil(lambda: "Could not read" in compare.status.text(), timeout=WAIT_MS)
    assert "<b>bold.jpg" in compare.status.text() and compare.status.textFormat() == Qt.TextFormat.PlainText
