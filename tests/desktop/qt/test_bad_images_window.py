"""The bad-image corpus through the window: the drop zone and the Batch tab. Each bad file
gets one clear message naming what is wrong, every good file is classified, and nothing
crashes or hangs (every wait has a timeout).

The corpus fixture and the checks are shared with the batch engine and `convnet-classify`
tests in tests/desktop/core/test_bad_images_app.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_images import VANISHING, file_cases, vanish_on_first_read
from test_app_window import WAIT_MS, _load, drop_files
from test_bad_images_app import _check_results, _upright_problems, corpus  # noqa: F401 - corpus is a fixture

from desktop.core.classifier import Prediction
from desktop.qt.batch_view import BatchView
from desktop.qt.main_window import MainWindow


def test_dropping_the_corpus_on_the_classify_view(
    qtbot, window: MainWindow, colour_model: Path, corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cases = corpus
    _load(qtbot, window, colour_model)
    seen: dict[Path, Prediction] = {}
    window.controller.prediction_ready.connect(lambda p: seen.__setitem__(p.path, p))
    paths = [folder / name for name in file_cases(cases)]
    vanish_on_first_read(monkeypatch, folder / VANISHING)
    drop_files(window.classify_view.viewer.image_view, paths)
    qtbot.waitUntil(lambda: set(paths) <= set(seen), timeout=WAIT_MS * 3)

    _check_results(folder, cases, {p: (seen[p].top_label, seen[p].error) for p in paths})
    problems = [problem for p in paths for problem in _upright_problems(cases[p.name], seen[p])]
    assert not problems, "\n".join(problems)
    # The list marks every file; selecting a bad one shows its message in the panel.
    listed = {
        window.classify_view.image_list.item(row).text() for row in range(window.classify_view.image_list.count())
    }
    for path in paths:
        case = cases[path.name]
        mark = f"{path.name} — unreadable" if case.must_fail else f"{path.name} — {seen[path].top_label}"
        assert any(text.startswith(mark) for text in listed), mark
    tips = {
        window.classify_view.image_list.item(row).text(): window.classify_view.image_list.item(row).toolTip()
        for row in range(window.classify_view.image_list.count())
    }
    for path in (p for p in paths if cases[p.name].must_fail):
        assert tips[f"{path.name} — unreadable"] == seen[path].error  # the reason on hover
        window.classify_view.image_list.select_path(path)
        qtbot.waitUntil(lambda: seen[path].error in window.classify_view.predictions.message.text(), timeout=WAIT_MS)
        assert "Could not classify this file" in window.classify_view.predictions.message.text()
    assert window.errors == []  # no dialog for a bad image


def test_batch_tab_over_the_corpus_folder(
    qtbot, window: MainWindow, colour_model: Path, corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import Qt

    folder, cases = corpus
    _load(qtbot, window, colour_model)
    view = window.view(BatchView)
    view.state_dir = tmp_path / "state"
    view.batch_size = 4  # several chunks, so the vanishing file is read well after the start
    view.ask_resume = lambda *args, **kwargs: "restart"
    vanish_on_first_read(monkeypatch, folder / VANISHING)
    drop_files(window.classify_view.viewer.image_view, [folder])  # a folder goes to the Batch tab
    assert window.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: not view.busy and len(view.results()) > 0, timeout=WAIT_MS * 3)

    results = {r.path: r for r in view.results()}
    assert len(results) == len(view.results())  # one row per file: the symlink loop is not walked twice
    _check_results(folder, cases, {p: (r.label, r.error) for p, r in results.items()})
    failures = sum(case.must_fail for case in file_cases(cases).values())
    assert f"{failures} could not be read" in view.message.text()
    for row, result in enumerate(view.model.results):
        if not result.ok:
            assert view.model.index(row, 2).data() == "error"
            assert result.error in view.model.index(row, 1).data(Qt.ItemDataRole.ToolTipRole)
    assert window.errors == []
