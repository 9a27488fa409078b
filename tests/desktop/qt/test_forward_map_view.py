"""The Classify view draws a forward-pass map for models without the in-graph Grad-CAM.

The model is the quadrant model of tests/desktop/core/test_forward_maps.py (class 0 is the
contrast of the top-left quadrant only), so the map drawn in the window can be checked
against the truth, not just for being there.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import onnx_factory
import pytest
from test_forward_maps import SIZE, quadrant_model

from desktop.core.forward_maps import DEFAULT_METHOD, RISE, MapMethod, checked_batch_size
from desktop.qt import forward_map_worker
from desktop.qt.forward_map_worker import ForwardMaps
from desktop.qt.main_window import MainWindow

WAIT_MS = 20_000
APPROXIMATE = f"forward passes ({DEFAULT_METHOD.title}) — approximate"


@pytest.fixture(scope="module")
def quadrant_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forward-maps") / "quadrant.onnx"
    onnx.save(quadrant_model(), str(path))
    return path


@pytest.fixture(scope="module")
def no_cam_colour_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_factory.save_model(tmp_path_factory.mktemp("forward-maps") / "colours-no-cam.onnx", with_cam=False)


def textured(seed: int = 3) -> np.ndarray:
    """2-pixel black and white checks with a calm (grey) top-left corner or not, per seed."""
    rng = np.random.default_rng(seed)
    checks = (rng.random((SIZE // 2, SIZE // 2)) < 0.5).astype(np.uint8) * 255
    grey = np.kron(checks, np.ones((2, 2), np.uint8))
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _load(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(path)


def _shown(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.classify_view.current is not None, timeout=WAIT_MS)


class CountingPredict:
    """Wraps a LoadedModel's predict to count the images the forward maps run."""

    def __init__(self, model) -> None:
        self.inner = model.predict
        self.images = 0

    def __call__(self, batch, **kwargs):
        self.images += len(batch)
        return self.inner(batch, **kwargs)


def test_model_without_cam_shows_a_computed_map_of_the_right_region(
    qtbot, window: MainWindow, quadrant_file: Path, write_png
) -> None:
    _load(qtbot, window, quadrant_file)
    viewer = window.classify_view.viewer
    progress: list[tuple[int, int]] = []
    window.classify_view.forward_maps.progress.connect(lambda done, total: progress.append((done, total)))
    window.open_images([write_png("checks.png", textured())])
    _shown(qtbot, window)
    qtbot.waitUntil(lambda: viewer.current_cam() is not None, timeout=WAIT_MS)
    passes = DEFAULT_METHOD.passes((SIZE, SIZE))
    assert f"Activation map: computed from {passes} {APPROXIMATE}" in viewer.cam_caption.text()
    assert progress and progress[-1] == (passes, passes)
    batch = checked_batch_size(quadrant_file, None)  # what the probe ran when the model loaded
    assert 1 < batch <= 32 and len(progress) == -(-passes // batch)  # reported batch by batch
    assert viewer.overlay_checkbox.isEnabled() and viewer.save_button.isEnabled()
    assert viewer.class_index == 0  # high contrast in the corner: class 0 is the top class
    saliency = viewer.current_cam()
    half = SIZE // 2
    peak_row, peak_col = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    assert peak_row < half and peak_col < half  # the corner's contrast is what drives class 0
    assert saliency[:half, :half].mean() > saliency[half:, :].mean() + 3 * saliency[half:, :].std()
    assert not np.array_equal(viewer.composed(), viewer._base)  # the map is drawn


def test_model_with_cam_still_shows_the_exact_map(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    window.open_images([write_png("r.png", onnx_factory.mostly((220, 0, 0)))])
    qtbot.waitUntil(lambda: window.classify_view.viewer.current_cam() is not None, timeout=WAIT_MS)
    prediction = window.classify_view.current
    viewer = window.classify_view.viewer
    np.testing.assert_array_equal(viewer.current_cam(), prediction.cam[..., viewer.class_index])
    assert "approximate" not in viewer.cam_caption.text() and "Grad-CAM" in viewer.cam_caption.text()
    assert not window.classify_view.forward_maps.computing and len(window.classify_view.forward_maps.cache) == 0


def test_cached_maps_cost_no_forward_passes(
    qtbot, window: MainWindow, no_cam_colour_file: Path, write_png, monkeypatch
) -> None:
    _load(qtbot, window, no_cam_colour_file)
    lookups: list[Path] = []

    def counted_batch_size(path, fixed, wanted):
        lookups.append(path)
        return checked_batch_size(path, fixed, wanted)

    monkeypatch.setattr(forward_map_worker, "checked_batch_size", counted_batch_size)
    window.classify_view.forward_maps.method = MapMethod(RISE, masks=64)
    counter = CountingPredict(window.controller.model)
    window.controller.model.predict = counter
    window.open_images([write_png("r.png", onnx_factory.mostly((220, 0, 0)))])
    _shown(qtbot, window)
    viewer = window.classify_view.viewer
    qtbot.waitUntil(lambda: viewer.current_cam() is not None, timeout=WAIT_MS)
    assert counter.images == 64
    first_class, first_map = viewer.class_index, viewer.current_cam().copy()
    other = next(i for i in range(3) if i != first_class)
    viewer.show_class(other)
    qtbot.waitUntil(lambda: viewer.current_cam() is not None and viewer.class_index == other, timeout=WAIT_MS)
    assert counter.images == 128
    viewer.show_class(first_class)  # back: from the cache, at once
    assert counter.images == 128 and viewer.current_cam() is not None
    np.testing.assert_array_equal(viewer.current_cam(), first_map)
    assert "64 forward passes" in viewer.cam_caption.text()
    assert lookups == [no_cam_colour_file]  # the probe verdict is read once per model, not per map


def test_switching_class_cancels_the_running_map_quickly(qtbot, window: MainWindow, quadrant_file: Path, write_png):
    _load(qtbot, window, quadrant_file)
    maps: ForwardMaps = window.classify_view.forward_maps
    maps.method = MapMethod(RISE, masks=200_000)  # minutes of work if nothing stopped it
    window.open_images([write_png("checks.png", textured())])
    _shown(qtbot, window)
    with qtbot.waitSignal(maps.progress, timeout=WAIT_MS):
        pass
    running = maps._task
    assert running is not None
    started = time.monotonic()
    with qtbot.waitSignal(running.signals.finished, timeout=5_000):
        window.classify_view.viewer.show_class(1 - window.classify_view.viewer.class_index)
    assert time.monotonic() - started < 5.0
    assert maps.computing  # the new class's map is on its way instead
    closing = time.monotonic()
    window.close()  # the view's shutdown cancels and waits
    assert time.monotonic() - closing < 5.0
    assert not maps.runner.busy or maps.runner.pool.activeThreadCount() == 0


def test_a_model_failing_on_masked_images_says_so_and_keeps_the_prediction(
    qtbot, window: MainWindow, no_cam_colour_file: Path, write_png
) -> None:
    _load(qtbot, window, no_cam_colour_file)

    def refuse(_batch, **_kwargs):
        raise RuntimeError("Non-zero status code returned while running Conv node\nsecond line")

    window.controller.model.predict = refuse  # classification (predict_all) still works
    window.open_images([write_png("g.png", onnx_factory.mostly((0, 220, 0)))])
    _shown(qtbot, window)
    viewer = window.classify_view.viewer
    qtbot.waitUntil(lambda: viewer.cam_caption.text().startswith("Activation map unavailable"), timeout=WAIT_MS)
    assert "Non-zero status code" in viewer.cam_caption.text() and "second line" not in viewer.cam_caption.text()
    assert viewer.current_cam() is None and not viewer.overlay_checkbox.isEnabled()
    assert window.classify_view.predictions.displayed()[0][0] == "green"
