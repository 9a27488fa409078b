"""The Train tab's dataset panel: scans in a worker, then shows counts, thumbnails and warnings."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from desktop.core import dataset_scan
from desktop.qt.train_dataset_panel import DatasetPanel
from desktop.qt.train_dataset_worker import strip

WAIT_MS = 20_000


def _dataset(root: Path, counts: dict[str, int]) -> Path:
    seed = 0
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            seed += 1
            pixels = np.random.default_rng(seed).integers(0, 255, (20, 30, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), pixels)
    return root


@pytest.fixture
def panel(qtbot) -> DatasetPanel:
    widget = DatasetPanel()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_counts_thumbnails_and_warnings_after_a_scan(qtbot, panel: DatasetPanel, tmp_path: Path) -> None:
    root = _dataset(tmp_path / "pets", {"cat": 40, "dog": 10, "<b>odd": 1})
    (root / "dog" / "broken.jpg").write_bytes(b"")
    shutil.copy(root / "cat" / "000.png", root / "dog" / "stolen.png")
    with qtbot.waitSignal(panel.dataset_changed, timeout=WAIT_MS) as changed:
        panel.set_dataset(root)
    assert changed.args == [root] and panel.dataset() == root
    qtbot.waitUntil(lambda: panel.current_scan() is not None, timeout=WAIT_MS)
    assert panel.class_counts() == {"<b>odd": 1, "cat": 40, "dog": 11}
    assert panel.table.cellWidget(1, 2).pixmap().width() > 0  # a thumbnail strip
    texts = "\n".join(panel.warning_texts())
    assert "imbalanced" in texts and "'cat' has 40" in texts
    assert "too few to split" in texts and "broken.jpg: the file is empty (0 bytes)" in texts
    assert "the same image is in 2 classes" in texts
    assert panel.cancel_button.isEnabled() is False and panel.rescan_button.isEnabled()


def test_scan_finished_carries_the_scan_and_rescan_sees_changes(qtbot, panel: DatasetPanel, tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 12, "b": 12})
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS) as done:
        panel.set_dataset(root)
    assert done.args[0].counts() == {"a": 12, "b": 12} and "No warnings" in panel.warnings_label.text()
    _dataset(root, {"c": 12})
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS):
        panel.rescan()
    assert panel.class_counts() == {"a": 12, "b": 12, "c": 12}


def test_an_empty_folder_and_one_class_say_training_refuses(qtbot, panel: DatasetPanel, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS):
        panel.set_dataset(tmp_path / "empty")
    assert "holds no class folders" in panel.warning_texts()[0] and "refuse" in panel.summary_label.text()
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS):
        panel.set_dataset(_dataset(tmp_path / "one", {"only": 3}))
    assert any("only one class" in text for text in panel.warning_texts())


def test_a_missing_folder_is_shown_not_raised(qtbot, panel: DatasetPanel, tmp_path: Path) -> None:
    panel.set_dataset(tmp_path / "gone")
    qtbot.waitUntil(lambda: "not found" in panel.summary_label.text(), timeout=WAIT_MS)
    assert panel.current_scan() is None and not panel.cancel_button.isEnabled()


def test_cancel_stops_the_scan_and_shows_nothing_stale(
    qtbot, panel: DatasetPanel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _dataset(tmp_path / "d", {"a": 3, "b": 3})
    started, release = threading.Event(), threading.Event()
    real_check = dataset_scan._check

    def slow_check(path, hash_it):
        started.set()
        release.wait(10)
        return real_check(path, hash_it)

    monkeypatch.setattr(dataset_scan, "_check", slow_check)
    panel.set_dataset(root)
    assert started.wait(10) and panel.cancel_button.isEnabled()
    panel.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=WAIT_MS)
    assert panel.current_scan() is None and panel.table.rowCount() == 0
    assert panel.summary_label.text() == "Scan cancelled."


def test_dropping_a_folder_scans_it(qtbot, panel: DatasetPanel, tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {"a": 2, "b": 2})
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(root))])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS):
        panel.dropEvent(event)
    assert panel.dataset() == root and panel.class_counts() == {"a": 2, "b": 2}


def test_a_strip_of_unreadable_files_is_none(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    assert strip((tmp_path / "x.png",)) is None
