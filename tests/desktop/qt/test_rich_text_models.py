"""A model whose texts are HTML is shown literally, and loading it cannot eat the machine.

A model whose `backbone` or a label was `<img src='/dev/zero'>` made the model panel's
QLabel render it as rich text: Qt read /dev/zero to the end and the app grew to
16-23 GB without ever showing its window. Here the real window opens such a model (its
labels, backbone, dataset, precision, export time and even its file name are markup),
classifies an image with it, and every text is checked to appear literally: labels and
status bar as plain text, tooltips as escaped rich text.

The window runs in a child process under an address-space limit (RLIMIT_AS) and an
alarm, so a regression fails this test with a MemoryError or a kill, not the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx_factory

ROOT = Path(__file__).resolve().parents[3]
IMG = "<img src='/dev/zero'>"
BOLD = "<b>x</b>"
LABELS = [IMG, BOLD, "<i>blue</i> & co"]
MEMORY_LIMIT_BYTES = 4 * 1024**3  # the window fits well inside; reading /dev/zero does not
TIME_LIMIT_S = 90


def _hostile_metadata() -> dict[str, str]:
    metadata = onnx_factory.full_metadata(LABELS, 16)
    metadata.update(
        backbone=IMG,
        precision=BOLD,
        exported_at=IMG,
        cam_layer=IMG,
        training=json.dumps({"dataset": IMG, "image_count": 3, "epochs": 1, "weights": BOLD}),
    )
    return metadata


def test_markup_in_a_model_is_shown_as_text_under_a_memory_limit(tmp_path: Path, write_png) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    # A file name cannot hold '/', so its <img> points at a relative "zero": a link to /dev/zero
    # in the child's working directory.
    model = onnx_factory.save_model(folder / "<img src=zero>.onnx", labels=LABELS, metadata=_hostile_metadata())
    (tmp_path / "zero").symlink_to("/dev/zero")
    image = write_png("<b>red.png", onnx_factory.solid_image((255, 0, 0)))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVNET_STUDIO_CONFIG_DIR=str(tmp_path / "config"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(Path(__file__).parent.parent)])
    result = subprocess.run(
        [sys.executable, __file__, str(model), str(image)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S + 30,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "ALL TEXT LITERAL" in result.stdout, result.stdout[-4000:]


def _child(model_path: str, image_path: str) -> None:
    """Open the model and the image in the real window, then check every text (run in the child)."""
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    signal.alarm(TIME_LIMIT_S)
    import cv2  # noqa: F401 - first, so its Qt variables exist to be scrubbed

    from desktop.qt.environment import scrub_opencv_qt_env

    scrub_opencv_qt_env()
    from PySide6.QtCore import QCoreApplication, QElapsedTimer, Qt
    from PySide6.QtGui import Qt as GuiQt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QApplication, QLabel

    from desktop.qt.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(provider="cpu")
    errors: list = []
    window.show_error = lambda title, text: errors.append((title, text))
    window.show()

    def wait_until(condition, what: str) -> None:
        timer = QElapsedTimer()
        timer.start()
        while not condition():
            assert timer.elapsed() < 30_000, f"timed out waiting for {what}; errors: {errors}"
            QCoreApplication.processEvents()
            app.processEvents()

    window.open_model(model_path)
    wait_until(lambda: window.controller.model is not None or errors, "the model")
    assert not errors, errors
    window.classify_view.open_images([Path(image_path)])
    wait_until(lambda: window.classify_view.predictions.displayed(), "the prediction")
    window.grab()  # lay out and paint everything: rich text would load its images here

    def shown(tip: str) -> str:
        document = QTextDocument()
        document.setHtml(tip) if GuiQt.mightBeRichText(tip) else document.setPlainText(tip)
        return document.toPlainText()

    panel = window.classify_view.model_panel.values
    model_name = Path(model_path).name
    assert panel["Backbone"].text() == IMG
    assert panel["File"].text() == model_name and shown(panel["File"].toolTip()) == model_path
    assert panel["Classes"].text().startswith(f"3: {IMG}, {BOLD}")
    assert shown(panel["Classes"].toolTip()) == "\n".join(LABELS)
    assert IMG in panel["Training"].text() and panel["Precision"].text() == BOLD and panel["Exported"].text() == IMG
    assert window.windowTitle().endswith(model_name) and window.model_status.text() == f"Model: {model_name}"
    shown_classes = [name for name, _ in window.classify_view.predictions.displayed()]
    assert sorted(shown_classes) == sorted(LABELS), shown_classes
    row = window.classify_view.predictions.rows[0]
    assert shown(row.toolTip()).startswith(row.name.text() + ": ")
    item = window.classify_view.image_list.item(0)
    assert shown(item.toolTip()) == image_path and item.text().startswith("<b>red.png")
    rich = [
        label.objectName() or label.text()[:40]
        for label in window.findChildren(QLabel)
        if label.textFormat() != Qt.TextFormat.PlainText and label.text()
    ]
    assert not rich, f"labels that may render markup: {rich}"
    window.close()
    print("ALL TEXT LITERAL")


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
