"""The batch view under pytest-qt: rows arrive, filters, cancel, resume, export, sort, undo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import onnx_factory
import pytest
from PySide6.QtCore import Qt
from test_batch_engine import SlowClassifier, make_folder

from desktop.core.classifier import Classifier
from desktop.qt.batch_model import ALL_CLASSES, COL_CONFIDENCE, ERRORS_ONLY, MISCLASSIFIED
from desktop.qt.batch_view import BatchView
from desktop.qt.controller import InferenceController

WAIT_MS = 10_000


@pytest.fixture
def controller(qtbot, colour_model: Path) -> InferenceController:
    ctrl = InferenceController(provider="cpu")
    with qtbot.waitSignal(ctrl.model_changed, timeout=WAIT_MS):
        ctrl.load_model(colour_model)
    yield ctrl
    ctrl.shutdown()


@pytest.fixture
def view(qtbot, controller: InferenceController, tmp_path: Path) -> BatchView:
    widget = BatchView(controller, state_dir=tmp_path / "state")
    widget.messages = []
    widget.show_message = lambda title, text, error=False: widget.messages.append((title, text))
    widget.resume_answer = "resume"
    widget.asked = []
    widget.ask_resume = lambda folder, count: (widget.asked.append(count), widget.resume_answer)[1]
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    yield widget
    widget.shutdown()


def _run(qtbot, view: BatchView, folder: Path) -> None:
    assert view.start_folder(folder)
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)


def test_folder_fills_table_with_error_rows(qtbot, view: BatchView, tmp_path: Path, write_png) -> None:
    folder = make_folder(tmp_path / "photos", write_png)
    _run(qtbot, view, folder)
    assert view.proxy.rowCount() == 6
    by_name = {r.path.name: r for r in view.results()}
    assert by_name["red.png"].label == "red" and by_name["truncated.png"].error
    row = next(i for i, r in enumerate(view.model.results) if r.path.name == "empty.jpg")
    assert view.model.index(row, 2).data() == "error"
    assert "empty" in view.model.index(row, 1).data(Qt.ItemDataRole.ToolTipRole)
    red = next(i for i, r in enumerate(view.model.results) if r.path.name == "red.png")
    tooltip = view.model.index(red, 1).data(Qt.ItemDataRole.ToolTipRole)
    assert "red:" in tooltip and "green:" in tooltip and "blue:" in tooltip  # top-k on hover
    assert "3 could not be read" in view.message.text() and view.progress.value() == 6
    qtbot.waitUntil(lambda: view.model.index(red, 0).data(Qt.ItemDataRole.DecorationRole) is not None, timeout=WAIT_MS)

    view.class_combo.setCurrentText("blue")
    assert [view.proxy.index(r, 1).data() for r in range(view.proxy.rowCount())] == ["nested/deeper/blue.png"]
    view.class_combo.setCurrentText(ERRORS_ONLY)
    assert view.proxy.rowCount() == 3
    view.class_combo.setCurrentText(ALL_CLASSES)
    view.threshold_spin.setValue(100)
    assert view.proxy.rowCount() == 3  # only error rows survive a 100 % threshold
    view.threshold_spin.setValue(0)
    view.table.sortByColumn(COL_CONFIDENCE, Qt.SortOrder.DescendingOrder)
    confidences = [view.proxy.visible_results()[i].confidence or -1 for i in range(6)]
    assert confidences == sorted(confidences, reverse=True)

    with qtbot.waitSignal(view.open_image_requested) as opened:
        view.table.doubleClicked.emit(view.proxy.index(0, 1))
    assert opened.args[0] == view.proxy.visible_results()[0].path

    view.class_combo.setCurrentText("red")
    assert view.export(tmp_path / "red.csv", "csv") and view.export(tmp_path / "all.json", "json")
    rows = list(csv.DictReader((tmp_path / "red.csv").open()))
    assert [Path(r["path"]).name for r in rows] == ["red.png"]  # the rows shown
    assert json.loads((tmp_path / "all.json").read_text())["results"][0]["label"] == "red"


def test_cancel_keeps_partial_and_resume_skips(qtbot, view: BatchView, controller, tmp_path: Path, write_png) -> None:
    folder = tmp_path / "many"
    for i in range(60):
        write_png(f"img{i:02d}.png", onnx_factory.solid_image((0, 200, 0), 8, 8), folder)
    slow = SlowClassifier(controller.model, delay=0.05)
    controller.classifier = slow
    view.batch_size = 4
    assert view.start_folder(folder)
    qtbot.waitUntil(lambda: len(view.model.results) >= 8, timeout=WAIT_MS)
    view.cancel()
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    partial = len(view.model.results)
    assert 8 <= partial < 60 and "Cancelled" in view.message.text()
    calls = slow.calls
    qtbot.wait(150)
    assert slow.calls == calls  # the worker really stopped

    _run(qtbot, view, folder)  # answers "resume"
    assert view.asked == [partial]
    assert len(view.model.results) == 60 and len({r.path for r in view.results()}) == 60
    assert slow.calls - calls == -(-(60 - partial) // 4)  # only the unfinished files were classified

    view.resume_answer = "restart"
    _run(qtbot, view, folder)
    assert len(view.model.results) == 60 and slow.calls - calls == -(-(60 - partial) // 4) + 15


def test_sort_move_and_undo_from_view(qtbot, view: BatchView, tmp_path: Path, write_png) -> None:
    folder = make_folder(tmp_path / "photos", write_png)
    _run(qtbot, view, folder)
    dest = tmp_path / "sorted"
    view.threshold_spin.setValue(100)  # nothing is that sure: all go to _unsure
    assert view.sort_into(dest, move=True)
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    assert sorted(p.name for p in (dest / "_unsure").iterdir()) == ["blue.png", "green.png", "red.png"]
    assert not (folder / "red.png").exists() and (folder / "empty.jpg").exists()  # errors stay
    assert view.undo_sort(dest)
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    assert (folder / "red.png").exists() and (folder / "nested" / "deeper" / "blue.png").exists()
    assert "Moved 3 images back" in view.message.text() and view.messages == []


def test_no_model_disables_start(qtbot, tmp_path: Path) -> None:
    ctrl = InferenceController(provider="cpu")
    widget = BatchView(ctrl, state_dir=tmp_path)
    qtbot.addWidget(widget)
    messages = []
    widget.show_message = lambda title, text, error=False: messages.append(title)
    assert not widget.classify_button.isEnabled() and "No model" in widget.message.text()
    assert not widget.start_folder(tmp_path) and messages == ["No model"]
    ctrl.classifier = Classifier(ctrl.model) if ctrl.model else None
    ctrl.shutdown()


def test_labelled_folder_shows_accuracy_while_running(
    qtbot, view: BatchView, controller, tmp_path: Path, write_png
) -> None:
    from test_labelled_folders import make_labelled_folder

    folder = make_labelled_folder(tmp_path / "photos", write_png)
    for i in range(12):  # enough files for the summary to be seen before the end
        write_png(f"img{i:02d}.png", onnx_factory.mostly((10, 230, 10)), folder / "green")
    controller.classifier = SlowClassifier(controller.model, delay=0.05)
    view.batch_size = 2
    statuses = []
    view.status_message.connect(statuses.append)
    assert view.start_folder(folder)
    qtbot.waitUntil(lambda: view.accuracy.isVisible() and "Accuracy" in view.accuracy.summary.text(), timeout=WAIT_MS)
    assert view.running  # the summary is there during the run, not only at the end
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    tally = view.accuracy.tally
    assert tally.images == 17 and tally.correct == 16 and tally.unlabelled == 2
    assert view.accuracy.summary.text() == tally.summary() and "94.1 %" in statuses[-1]
    assert [row[0] for row in view.accuracy.rows()] == ["red", "blue", "green"]  # weakest first, ties by name
    table = {row[0]: row for row in view.accuracy.rows()}
    assert set(table) == {"red", "green", "blue"}
    assert table["red"][1:4] == ["3", "2", "66.7%"] and table["red"][4] == "green (1)"
    assert table["blue"][1] == "1 (+1 unreadable)"
    row = next(i for i, r in enumerate(view.model.results) if r.path.name == "c.png")
    assert "True class (its folder): red" in view.model.index(row, 1).data(Qt.ItemDataRole.ToolTipRole)
    view.class_combo.setCurrentText(MISCLASSIFIED)  # offered for a labelled folder: the one planted mistake
    assert [r.path.name for r in view.proxy.visible_results()] == ["c.png"]
    view.class_combo.setCurrentText(ALL_CLASSES)

    assert view.export(tmp_path / "out.csv", "csv")
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert {Path(r["path"]).name: r["true_label"] for r in rows}["c.png"] == "red"

    plain = make_folder(tmp_path / "plain", write_png)  # no class folders: no panel, five columns
    view.resume_answer = "restart"
    _run(qtbot, view, plain)
    assert not view.accuracy.isVisible() and view.accuracy.truth is None and "Accuracy" not in view.message.text()
    assert view.class_combo.findText(MISCLASSIFIED) < 0
    assert view.export(tmp_path / "plain.csv", "csv")
    assert (tmp_path / "plain.csv").read_text().splitlines()[
        0
    ] == "path,label,confidence,top_k,error,unknown,unknown_score"


def test_resumed_rows_count_towards_accuracy(qtbot, view: BatchView, controller, tmp_path: Path, write_png) -> None:
    from test_labelled_folders import make_labelled_folder

    folder = make_labelled_folder(tmp_path / "photos", write_png)
    _run(qtbot, view, folder)
    first = (view.accuracy.tally.images, view.accuracy.tally.correct)
    _run(qtbot, view, folder)  # answers "resume": every good file comes back from the state
    assert view.asked and (view.accuracy.tally.images, view.accuracy.tally.correct) == first
