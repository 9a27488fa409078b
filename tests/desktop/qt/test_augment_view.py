"""The Augment view under pytest-qt: loading, controls, reshuffle, model presets, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx_factory
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.core import augmentation as aug
from desktop.core.augmentation import AugmentParams
from desktop.qt.augment_view import AugmentView
from desktop.qt.augment_widgets import EMPTY_HINT, TILE_COUNT
from desktop.qt.controller import InferenceController

WAIT_MS = 10_000


def photo(height: int = 300, width: int = 400) -> np.ndarray:
    """A photo-like RGB image: sky gradient, ground, a sun, so variants visibly differ."""
    y = np.linspace(0, 1, height)[:, None, None]
    image = np.broadcast_to((60 + 120 * y) * np.array([0.6, 0.8, 1.0]), (height, width, 3)).copy()
    image[height * 2 // 3 :] = (70, 120, 50)
    yy, xx = np.mgrid[0:height, 0:width]
    image[(xx - width // 4) ** 2 + (yy - height // 4) ** 2 < (height // 8) ** 2] = (250, 220, 90)
    return image.astype(np.uint8)


@pytest.fixture
def controller():
    ctrl = InferenceController(provider="cpu")
    yield ctrl
    ctrl.shutdown()


@pytest.fixture
def view(qtbot, controller) -> AugmentView:
    widget = AugmentView(controller)
    qtbot.addWidget(widget)
    widget.resize(1100, 650)
    widget.show()
    yield widget
    widget.shutdown()


@pytest.fixture
def loaded(qtbot, view: AugmentView, write_png) -> AugmentView:
    view.set_params(aug.PRESETS["seed"])
    with qtbot.waitSignal(view.variants_changed, timeout=WAIT_MS):
        view.load_image(write_png("photo.png", photo()))
    return view


def regenerated(qtbot, view: AugmentView, action) -> list[np.ndarray]:
    before = view.tiles()
    with qtbot.waitSignal(view.variants_changed, timeout=WAIT_MS):
        action()
    qtbot.wait(50)  # let a coalesced follow-up job land too
    after = view.tiles()
    assert len(after) == len(before) == TILE_COUNT
    return after


def test_empty_state(view: AugmentView) -> None:
    assert view.grid.tile_count() == 0
    assert view.grid.hint() == EMPTY_HINT
    assert view.params() == AugmentParams()
    assert not view.model_button.isEnabled()


def test_loading_an_image_shows_a_grid_of_variants(loaded: AugmentView) -> None:
    tiles = loaded.tiles()
    assert loaded.grid.tile_count() == TILE_COUNT == len(tiles) == 12
    assert tiles[0].shape == (192, 256, 3)  # downscaled for the preview
    assert len({tile.tobytes() for tile in tiles}) == TILE_COUNT  # all different
    assert "photo.png" in loaded.source_label.text()


def test_slider_changes_parameters_and_regenerates(qtbot, loaded: AugmentView) -> None:
    before = loaded.tiles()
    after = regenerated(qtbot, loaded, lambda: loaded.rows["rotation_degrees"].slider.setValue(120))
    assert loaded.params().rotation_degrees == 120
    assert loaded.rows["rotation_degrees"].spin.value() == 120
    assert loaded.preset_combo.currentText() == "custom"
    assert not any(np.array_equal(a, b) for a, b in zip(before, after))
    after_spin = regenerated(qtbot, loaded, lambda: loaded.rows["zoom"].spin.setValue(0.05))
    assert loaded.params().zoom == pytest.approx(0.05) and loaded.rows["zoom"].slider.value() == 5
    assert not np.array_equal(after[3], after_spin[3])


def test_flip_and_fill_controls(qtbot, loaded: AugmentView) -> None:
    regenerated(qtbot, loaded, lambda: loaded.fill_combo.setCurrentText("wrap"))
    regenerated(qtbot, loaded, lambda: loaded.flip_boxes["vertical_flip"].setChecked(True))
    assert loaded.params().fill_mode == "wrap" and loaded.params().vertical_flip


def test_reshuffle_changes_variants(qtbot, loaded: AugmentView) -> None:
    before = loaded.tiles()
    params = loaded.params()
    after = regenerated(qtbot, loaded, loaded.reshuffle_button.click)
    assert loaded.params() == params
    assert not any(np.array_equal(a, b) for a, b in zip(before, after))


def test_presets_combo(qtbot, loaded: AugmentView) -> None:
    regenerated(qtbot, loaded, lambda: loaded.apply_preset("light"))
    assert loaded.params() == aug.PRESETS["light"]
    assert loaded.rows["rotation_degrees"].spin.value() == 10
    assert not loaded.flip_boxes["horizontal_flip"].isChecked()
    assert loaded.preset_combo.currentText() == "light"


def test_model_augmentation_metadata_is_applied(qtbot, view: AugmentView, controller, tmp_path: Path) -> None:
    metadata = onnx_factory.full_metadata(onnx_factory.COLOUR_LABELS, 16)
    metadata["augmentation"] = json.dumps(aug.PRESETS["seed"].to_dict())
    model = onnx_factory.save_model(tmp_path / "seeded.onnx", metadata=metadata)
    with qtbot.waitSignal(controller.model_changed, timeout=WAIT_MS):
        controller.load_model(model)
    assert view.params() == aug.PRESETS["seed"]
    assert view.preset_combo.currentText() == "seed"
    assert "seeded.onnx" in view.model_note.text() and "(seed)" in view.model_note.text()
    view.apply_preset("none")
    assert view.model_button.isEnabled()
    view.model_button.click()
    assert view.params() == aug.PRESETS["seed"] and not view.model_button.isEnabled()


def test_model_without_usable_settings_keeps_current(qtbot, view: AugmentView, controller, colour_model) -> None:
    view.apply_preset("light")
    with qtbot.waitSignal(controller.model_changed, timeout=WAIT_MS):
        controller.load_model(colour_model)  # its augmentation metadata is {"flip": false}
    assert view.params() == aug.PRESETS["light"]
    assert "Keeping the current settings" in view.model_note.text()
    assert not view.use_model_settings() and not view.model_button.isEnabled()


def test_bad_image_file_shows_a_clear_message(qtbot, loaded: AugmentView, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with qtbot.waitSignal(loaded.message_changed, timeout=WAIT_MS) as blocker:
        loaded.load_image(bad)
    assert "broken.png" in blocker.args[0] and "not a readable image" in blocker.args[0]
    assert loaded.grid.tile_count() == 0
    assert "Cannot preview" in loaded.grid.hint() and "not a readable image" in loaded.grid.hint()
    with qtbot.waitSignal(loaded.message_changed, timeout=WAIT_MS) as blocker:
        loaded.load_image(tmp_path / "missing.jpg")
    assert "file not found" in blocker.args[0]


def test_export_yaml_round_trips(qtbot, loaded: AugmentView, tmp_path: Path) -> None:
    from training.augment import resolve_augment

    loaded.rows["contrast"].spin.setValue(0.3)
    target = tmp_path / "out" / "aug.yaml"
    loaded.ask_export_path = lambda: target
    assert loaded.export_yaml() == target
    assert resolve_augment(str(target)).to_dict() == loaded.params().to_dict()
    assert "aug.yaml" in loaded.message()
    loaded.ask_export_path = lambda: None  # cancelled dialog writes nothing
    assert loaded.export_yaml() is None


def test_dropping_a_file_loads_it(qtbot, view: AugmentView, write_png) -> None:
    path = write_png("dropped.png", photo(120, 90))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = view.grid.geometry().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(centre), *args)
    QApplication.sendEvent(view, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(view.variants_changed, timeout=WAIT_MS):
        QApplication.sendEvent(view, QDropEvent(QPointF(centre), *args))
    assert view.grid.tile_count() == TILE_COUNT
    assert view.tiles()[0].shape == (120, 90, 3)  # small images are not resized
