"""The labelling dialog under pytest-qt: classify a folder in the worker, decide with keys, add to the dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop.core.dataset_edits import DatasetEdits
from desktop.core.model import load_model
from desktop.qt.train_label_dialog import LabelDialog

WAIT_MS = 20_000
RED, GREEN, BLUE = (230, 0, 0), (0, 220, 0), (0, 0, 230)
HESITANT = (120, 110, 0)  # red, barely


def _png(path: Path, rgb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((24, 24, 3), rgb[::-1], np.uint8))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "colours"
    _png(root / "red" / "r.png", RED)
    _png(root / "green" / "g.png", GREEN)
    return root


@pytest.fixture
def new_images(tmp_path: Path) -> Path:
    folder = tmp_path / "new"
    _png(folder / "1-red.png", RED)
    _png(folder / "2-hesitant.png", HESITANT)
    _png(folder / "3-green.png", GREEN)
    _png(folder / "4-blue.png", BLUE)
    (folder / "5-broken.png").write_bytes(b"\x89PNG but not really")
    return folder


@pytest.fixture(scope="module")
def model(colour_model: Path):
    return load_model(colour_model, provider="cpu")


def _dialog(qtbot, dataset: Path, model) -> LabelDialog:
    dialog = LabelDialog(dataset, model, provider="cpu")
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _classified(qtbot, dialog: LabelDialog, folder: Path) -> None:
    dialog.set_folder(folder)
    qtbot.waitUntil(lambda: dialog.session is not None, timeout=WAIT_MS)


def _texts(dialog: LabelDialog) -> list[str]:
    return [dialog.grid.item(row).text() for row in range(dialog.grid.model_.rowCount())]


def test_keys_decide_and_commit_adds_to_the_dataset(qtbot, dataset: Path, new_images: Path, model) -> None:
    dialog = _dialog(qtbot, dataset, model)
    _classified(qtbot, dialog, new_images)
    session = dialog.session
    names = [item.path.name for item in session.items]
    assert names[0] == "2-hesitant.png"  # least certain first
    assert _texts(dialog)[0].startswith("red ") and "%" in _texts(dialog)[0]
    assert not dialog.grid.item(0).icon().isNull()
    assert dialog.unreadable_list.count() == 1 and "5-broken.png" in dialog.unreadable_list.item(0).text()
    assert "blue" in dialog.classes_label.text()  # a model class with no folder is named
    assert dialog.classes_label.text().startswith("Classes: 1: green  2: red")

    dialog.grid.setFocus()
    assert dialog.grid.current_row() == 0
    qtbot.keyClick(dialog.grid, Qt.Key.Key_1)  # hesitant (red by the model) -> green
    assert session.decision(0).label == "green" and session.decision(0).kind == "corrected"
    assert dialog.grid.current_row() == 1  # moved on
    rest = {names[row]: row for row in range(1, len(names))}
    dialog.grid.set_current_row(rest["1-red.png"])
    qtbot.keyClick(dialog.grid, Qt.Key.Key_Return)
    dialog.grid.set_current_row(rest["3-green.png"])
    qtbot.keyClick(dialog.grid, Qt.Key.Key_Space)
    dialog.grid.set_current_row(rest["4-blue.png"])
    qtbot.keyClick(dialog.grid, Qt.Key.Key_Return)  # blue has no folder: refused with a reason
    assert session.decision(rest["4-blue.png"]) is None and "no folder" in dialog.status_label.text()
    qtbot.keyClick(dialog.grid, Qt.Key.Key_Backspace)
    assert session.decision(rest["4-blue.png"]).kind == "skipped"
    assert "skipped" in dialog.grid.item(rest["4-blue.png"]).text()
    assert dialog.commit_button.text() == "Add 3 images to the dataset" and dialog.commit_button.isEnabled()

    with qtbot.waitSignal(dialog.committed, timeout=WAIT_MS) as signal:
        dialog.commit_button.click()
    assert signal.args[0].added_count == 3
    assert sorted(p.name for p in (dataset / "green").iterdir()) == ["2-hesitant.png", "3-green.png", "g.png"]
    assert sorted(p.name for p in (dataset / "red").iterdir()) == ["1-red.png", "r.png"]
    assert "Added 3 image(s)" in dialog.status_label.text()
    assert dialog.commit_button.text() == "Add 0 images to the dataset" and not dialog.commit_button.isEnabled()
    assert "added to green" in dialog.grid.item(0).text()
    assert len(DatasetEdits(dataset).undo_all().undone) == 3
    dialog.close()


def test_class_picker_and_adding_the_model_classes(qtbot, dataset: Path, new_images: Path, model) -> None:
    dialog = _dialog(qtbot, dataset, model)
    _classified(qtbot, dialog, new_images)
    assert not dialog.add_missing_button.isHidden()
    dialog.add_missing_button.click()
    assert dialog.session.classes == ["green", "red", "blue"] and dialog.add_missing_button.isHidden()
    dialog.new_class_edit.setText("GREEN")
    dialog.add_class_button.click()  # a look-alike of an existing class is refused
    assert "letter case" in dialog.status_label.text() and "GREEN" not in dialog.session.classes
    blue = [item.path.name for item in dialog.session.items].index("4-blue.png")
    dialog.grid.set_current_row(blue)
    qtbot.keyClick(dialog.grid, Qt.Key.Key_Enter)
    assert dialog.session.decision(blue).label == "blue"
    dialog.grid.set_current_row(0)
    dialog.class_combo.setCurrentText("blue")
    dialog.assign_button.click()
    assert dialog.session.decision(0).label == "blue"
    dialog.commit()
    assert sorted(p.name for p in (dataset / "blue").iterdir()) == ["2-hesitant.png", "4-blue.png"]
    dialog.close()


def test_no_model_and_a_folder_inside_the_dataset_say_why(qtbot, dataset: Path, new_images: Path) -> None:
    dialog = _dialog(qtbot, dataset, None)
    assert "No model loaded" in dialog.model_label.text()
    dialog.set_folder(dataset / "red")
    assert "part of the dataset" in dialog.status_label.text() and dialog.folder is None
    dialog.set_folder(new_images)
    qtbot.waitUntil(lambda: "Could not classify" in dialog.status_label.text(), timeout=WAIT_MS)
    assert "no model" in dialog.status_label.text() and dialog.session is None
    dialog.close()


def test_another_model_file_is_loaded_in_the_worker(qtbot, dataset: Path, new_images: Path, colour_model) -> None:
    dialog = _dialog(qtbot, dataset, None)
    dialog.set_folder(new_images)
    qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT_MS)
    dialog.set_model_path(colour_model)
    qtbot.waitUntil(lambda: dialog.session is not None, timeout=WAIT_MS)
    assert len(dialog.session.items) == 4 and str(colour_model) in dialog.model_label.text()
    dialog.close()


def test_the_train_tab_row_opens_both_dialogs_and_rescans(qtbot, dataset: Path, new_images: Path, model) -> None:
    from desktop.qt.controller import InferenceController
    from desktop.qt.train_view import TrainView

    controller = InferenceController(provider="cpu")
    view = TrainView(controller)
    qtbot.addWidget(view)
    buttons = view.grow_buttons
    assert not buttons.label_button.isEnabled() and not buttons.capture_button.isEnabled()
    assert (
        buttons.label_button.text() == "Label new images…" and buttons.capture_button.text() == "Capture from camera…"
    )
    view.dataset_panel.set_dataset(dataset)
    qtbot.waitUntil(lambda: view.dataset_panel.current_scan() is not None, timeout=WAIT_MS)
    assert buttons.label_button.isEnabled() and buttons.capture_button.isEnabled()
    controller.model = model
    dialog = buttons.open_label_dialog()
    assert dialog.isVisible() and dialog.model is model
    _classified(qtbot, dialog, new_images)
    dialog.session.correct(0, "red")
    dialog.commit()
    qtbot.waitUntil(lambda: view.dataset_panel.class_counts().get("red") == 2, timeout=WAIT_MS)
    capture = buttons.open_capture_dialog()
    assert capture.isVisible() and capture.dataset == dataset
    view.shutdown(2000)
    controller.shutdown()
