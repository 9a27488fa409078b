"""The Adopt model dialog in the real window, with a fake `convnet-train adopt` (fake_adopter.py).

The preview runs a real float NCHW ONNX graph (onnx_factory's colour model without
metadata): what the fake's inspect step hands over as the preview file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import onnx_factory
import pytest
from onnx import TensorProto

from desktop.core.trainer_launcher import Launcher, TrainerMissing
from desktop.qt import adopt_worker
from desktop.qt.adopt_dialog import AdoptDialog

FAKE = Path(__file__).resolve().parent / "fake_adopter.py"
RED = onnx_factory.mostly((230, 20, 20), height=48, width=64)
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def foreign_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("foreign") / "resnet-like.onnx"
    return onnx_factory.save_model(path, input_dtype=TensorProto.FLOAT, layout="NCHW", metadata=None)


@pytest.fixture
def fake_adopter(tmp_path: Path, monkeypatch) -> Path:
    """The dialog finds the fake adopter as its convnet-train; returns the argv log."""
    launcher = Launcher((sys.executable, str(FAKE)), "a fake convnet-train adopt", "path")
    monkeypatch.setattr(adopt_worker, "find_launcher", lambda: launcher)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("FAKE_ADOPT_LOG", str(log))
    monkeypatch.delenv("FAKE_ADOPT", raising=False)
    return log


@pytest.fixture
def red_picture(write_png) -> Path:
    return write_png("red.png", RED)


def shown_adopt_dialog(window) -> AdoptDialog | None:
    """The Adopt dialog the window has open (a rejected one is hidden until Qt deletes it), or None."""
    shown = [dialog for dialog in window.findChildren(AdoptDialog) if dialog.isVisible()]
    return shown[-1] if shown else None


def _inspected(window) -> AdoptDialog | None:
    dialog = shown_adopt_dialog(window)
    return dialog if dialog is not None and dialog.inspection is not None else None


def open_dialog(window, qtbot, source: Path):
    window.open_model(source)
    qtbot.waitUntil(lambda: _inspected(window) is not None, timeout=WAIT_MS)
    return _inspected(window)


def previewed(qtbot, dialog, after=None):
    qtbot.waitUntil(
        lambda: dialog.last_preview is not None and dialog.last_preview is not after and not dialog.worker.preview_busy,
        timeout=WAIT_MS,
    )
    return dialog.last_preview


def test_foreign_onnx_opens_the_dialog_with_what_was_detected(window, qtbot, fake_adopter, foreign_model) -> None:
    dialog = open_dialog(window, qtbot, foreign_model)
    assert window.errors == []  # offered the dialog instead of only the error
    assert "model input must be uint8 NHWC RGB" in dialog.reason.text() and dialog.reason.isVisibleTo(dialog)
    assert "ONNX model" in dialog.detected.text() and "float32 [?, 3, 16, 16]" in dialog.detected.text()
    assert dialog.origins["layout"].text() == "from the input tensor's shape"
    assert dialog.origins["labels"].text() == "from labels.txt beside the file"
    assert dialog.origins["channel_order"].text() == "default"
    assert dialog.missing_highlighted() == ["mean", "std"]
    assert dialog.labels_edit.toPlainText().splitlines() == ["red", "green", "blue"]
    assert (dialog.height_spin.value(), dialog.width_spin.value()) == (16, 16)
    assert dialog.save_button.isEnabled()
    assert "No picture yet" in dialog.answers.text()
    dialog.reject()


def test_live_preview_changes_with_mean_and_std(window, qtbot, fake_adopter, foreign_model, red_picture) -> None:
    dialog = open_dialog(window, qtbot, foreign_model)
    dialog.set_picture(red_picture)
    first = previewed(qtbot, dialog)
    assert first.top_k[0][0] == "red" and first.top_k[0][1] < 0.5  # ImageNet scaling: nearly flat here
    assert dialog.answers.text().splitlines()[0].endswith("red")
    index = dialog.preset_combo.findText("0…255")
    dialog.preset_combo.setCurrentIndex(index)
    dialog.preset_combo.activated.emit(index)
    second = previewed(qtbot, dialog, after=first)
    assert second.top_k[0][0] == "red" and second.top_k[0][1] > 0.99
    assert [s.value() for s in dialog.std_spins] == pytest.approx([1 / 255] * 3, abs=1e-6)
    assert dialog.missing_highlighted() == []  # set by the user now
    assert dialog.origins["mean"].text() == "set here"
    dialog.order_combo.setCurrentIndex(1)  # BGR: the red picture now reads as blue
    assert previewed(qtbot, dialog, after=second).top_k[0][0] == "blue"
    dialog.reject()


def test_save_runs_the_child_and_opens_the_result(window, qtbot, fake_adopter, foreign_model, tmp_path) -> None:
    dialog = open_dialog(window, qtbot, foreign_model)
    assert dialog.default_save_path() == foreign_model.parent / "resnet-like-adopted.onnx"
    index = dialog.preset_combo.findText("−1…1")
    dialog.preset_combo.setCurrentIndex(index)
    dialog.preset_combo.activated.emit(index)
    destination = tmp_path / "adopted.onnx"
    dialog.save_to(destination)
    qtbot.waitUntil(
        lambda: window.controller.model is not None and window.controller.model.info.path == destination,
        timeout=WAIT_MS,
    )
    argv = json.loads(fake_adopter.read_text().splitlines()[-1])
    assert argv[argv.index("--mean") + 1 : argv.index("--mean") + 4] == ["0.5", "0.5", "0.5"]
    assert window.controller.model.info.labels == ["red", "green", "blue"]
    assert window.errors == []


def test_cancel_kills_the_child_and_leaves_nothing(window, qtbot, fake_adopter, foreign_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ADOPT", "slow")
    dialog = open_dialog(window, qtbot, foreign_model)
    out = tmp_path / "out"
    out.mkdir()
    dialog.save_to(out / "adopted.onnx")
    assert dialog.cancel_button.text() == "Cancel" and not dialog.save_button.isEnabled()
    qtbot.waitUntil(lambda: any(out.rglob("adopted.onnx")), timeout=WAIT_MS)  # the child is writing
    started = time.monotonic()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: "Cancelled" in dialog.status.text(), timeout=WAIT_MS)
    assert time.monotonic() - started < 15  # the fake sleeps 60 s: it was killed
    assert list(out.iterdir()) == []
    assert dialog.save_button.isEnabled() and dialog.cancel_button.text() == "Close"
    dialog.reject()


def test_a_failing_child_shows_its_message(window, qtbot, fake_adopter, foreign_model, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_ADOPT", "fail")
    dialog = open_dialog(window, qtbot, foreign_model)
    dialog.save_to(tmp_path / "adopted.onnx")
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Not saved"), timeout=WAIT_MS)
    assert "the adopted file's probabilities differ from the original's" in dialog.status.text()
    assert not (tmp_path / "adopted.onnx").exists()
    dialog.reject()


def test_unreadable_source_says_why(window, qtbot, fake_adopter, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_ADOPT", "unreadable")
    source = tmp_path / "model.h5"
    source.write_bytes(b"not really hdf5")
    window.open_model_source(source)  # a Keras file goes straight to the dialog
    dialog = shown_adopt_dialog(window)
    qtbot.waitUntil(lambda: "cannot be adopted" in dialog.status.text(), timeout=WAIT_MS)
    assert "model.h5: not an ONNX, Keras or SavedModel file" in dialog.status.text()
    assert not dialog.save_button.isEnabled()
    dialog.reject()


def test_no_convnet_train_says_how_to_get_one(window, qtbot, foreign_model, monkeypatch) -> None:
    missing = TrainerMissing("Training needs TensorFlow, which the app does not install.", None, None, None)
    monkeypatch.setattr(adopt_worker, "find_launcher", lambda: missing)
    window.open_model(foreign_model)
    qtbot.waitUntil(lambda: shown_adopt_dialog(window) is not None, timeout=WAIT_MS)
    dialog = shown_adopt_dialog(window)
    qtbot.waitUntil(lambda: "needs convnet-train" in dialog.status.text(), timeout=WAIT_MS)
    assert missing.explanation in dialog.status.text() and "Install training support" in dialog.status.text()
    dialog.reject()


def test_model_folders_and_keras_files_are_model_sources(tmp_path: Path) -> None:
    from desktop.core.adoption import is_model_source

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"x")
    images = tmp_path / "photos"
    (images / "cat").mkdir(parents=True)
    keras = tmp_path / "net.keras"
    keras.write_bytes(b"x")
    assert is_model_source(saved) and is_model_source(keras)
    assert not is_model_source(images) and not is_model_source(tmp_path / "missing.h5")


def test_dropping_a_foreign_model_on_the_picture_opens_the_dialog(window, qtbot, fake_adopter, foreign_model) -> None:
    from test_app_window import drop_files

    drop_files(window.classify_view.viewer.image_view, [foreign_model])
    qtbot.waitUntil(lambda: _inspected(window) is not None, timeout=WAIT_MS)
    dialog = _inspected(window)
    assert dialog.source == foreign_model
    assert window.classify_view.image_list.current_path() is None  # not listed as an image
    dialog.reject()


@pytest.mark.slow
def test_end_to_end_with_the_real_convnet_train(window, qtbot, foreign_model, red_picture, tmp_path) -> None:
    """A foreign float NCHW ONNX -> the dialog -> the real `convnet-train adopt` -> the window classifies with it."""
    from desktop.core.trainer_launcher import find_launcher

    assert isinstance(find_launcher(), Launcher)  # this test environment trains; the dialog finds the same
    dialog = open_dialog(window, qtbot, foreign_model)
    assert dialog.worker.launcher is not None and dialog.missing_highlighted() == ["mean", "std"]
    index = dialog.preset_combo.findText("0…255")
    dialog.preset_combo.setCurrentIndex(index)
    dialog.preset_combo.activated.emit(index)
    dialog.labels_edit.setPlainText("rot\ngrün\nblau")
    destination = tmp_path / "adopted.onnx"
    dialog.save_to(destination)
    qtbot.waitUntil(
        lambda: window.controller.model is not None and window.controller.model.info.path == destination,
        timeout=180_000,
    )
    assert window.controller.model.info.labels == ["rot", "grün", "blau"]
    window.open_images([red_picture])
    qtbot.waitUntil(lambda: bool(window.classify_view.predictions.displayed()), timeout=WAIT_MS)
    top, _shown = window.classify_view.predictions.displayed()[0][:2]
    assert top == "rot"
    assert window.classify_view.current.top_k[0][1] > 0.99  # raw 0-255 pixels, as the preset said
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".adopting")) == []
