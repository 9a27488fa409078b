"""The Train tab driven end to end with a FAKE convnet-train (fake_trainer.py), and once with the real one.

The fake is a small script written by the tests: it answers `models` with a table in
convnet-train's format and `train` with schema-1 progress events on stdout (short sleeps
between batches), writes the run folder's files the app reads (history.csv,
checkpoints/state.json, result.json), honours SIGINT with a `stopped` event and exit 130,
and with FAKE_DIE set kills itself after its first epoch. `find_launcher` is replaced
so the tab runs it; everything else (TrainingProcess, RunProgress, run_history) is real.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from fake_trainer import write_dataset

from desktop.core.trainer_launcher import Launcher, TrainerMissing
from desktop.qt import train_view
from desktop.qt.main_window import MainWindow
from desktop.qt.train_view import TrainView


def ready(qtbot, view: TrainView, data: Path) -> None:
    """Trainer found, networks listed, dataset scanned: Start is enabled."""
    qtbot.waitUntil(lambda: view.launcher is not None, timeout=30_000)
    qtbot.waitUntil(lambda: "fakenet" in view.settings_panel.backbones, timeout=30_000)
    view.settings_panel.select_backbone("fakenet")
    view.settings_panel.set_advanced({"epochs": 4})
    view.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: view.run_panel.start_button.isEnabled(), timeout=20_000)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_start_stop_resume_done_and_runs_list(qtbot, tab: TrainView, tmp_path: Path, monkeypatch) -> None:
    # 4 epochs of 5 batches at 0.3 s: Stop lands mid-run even on a loaded machine (at the
    # default 0.05 s the whole run took a second, and a slow event loop saw it end first).
    monkeypatch.setenv("FAKE_DELAY", "0.3")
    data = write_dataset(tmp_path / "pets")
    assert "fake convnet-train" in tab.trainer_label.text()
    ready(qtbot, tab, data)
    assert "from scratch" in tab.settings_panel.backbone_info.text()
    tab.run_panel.start_button.click()
    assert tab.process is not None and tab.run_panel.stop_button.isEnabled()
    assert "--epochs=4" in tab.process.argv and "--weights=none" in tab.process.argv
    qtbot.waitUntil(lambda: len(tab.run_panel.curves.points("val_accuracy")[0]) >= 1, timeout=15_000)
    assert tab.run_panel.epoch_bar.maximum() == 4 and tab.run_panel.epoch_bar.value() >= 1
    qtbot.waitUntil(lambda: tab.run_panel.batch_bar.value() >= 1, timeout=5_000)
    assert "images/s" in tab.run_panel.rate_label.text()
    xs, ys = tab.run_panel.curves.points("loss")
    assert xs[0] == 1.0 and ys[0] == pytest.approx(1.0)

    pid = tab.process.pid
    tab.run_panel.stop_button.click()
    qtbot.waitUntil(lambda: tab.process is None, timeout=10_000)
    assert pid_gone(pid)
    assert tab.progress.state == "stopped" and tab.progress.can_resume
    assert tab.run_panel.resume_button.isEnabled()
    done_before = len(tab.progress.epochs)

    tab.run_panel.resume_button.click()
    assert tab.process is not None and "--resume" in tab.process.argv
    qtbot.waitUntil(lambda: tab.process is None, timeout=20_000)
    assert tab.progress.state == "done", (tab.progress.error, tab.progress.stderr_tail)
    assert [r.epoch for r in tab.progress.epochs] == [1, 2, 3, 4] and done_before >= 1
    assert len(tab.run_panel.curves.points("val_loss")[0]) == 4
    assert tab.run_panel.results_box.isVisibleTo(tab)
    assert "Best validation accuracy" in tab.run_panel.best_label.text()
    assert tab.run_panel.report_list.item(0).text() == "metrics.json"
    assert not tab.run_panel.resume_button.isEnabled()

    runs = tab.run_panel.runs
    assert len(runs) == 1 and runs[0].status == "finished" and runs[0].backbone == "fakenet"
    tab.run_panel.select_runs([runs[0].name])
    assert len(tab.run_panel.curves.points("accuracy")[0]) == 4


def test_two_runs_compare_in_one_plot(qtbot, tab: TrainView, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "pets")
    ready(qtbot, tab, data)
    tab.settings_panel.set_advanced({"epochs": 2})
    for _ in range(2):
        qtbot.waitUntil(lambda: tab.run_panel.start_button.isEnabled(), timeout=10_000)
        tab.run_panel.start_button.click()
        qtbot.waitUntil(lambda: tab.process is None, timeout=20_000)
        assert tab.progress.state == "done"
    names = [run.name for run in tab.run_panel.runs]
    assert len(names) == 2 and names[0] != names[1]
    tab.run_panel.select_runs(names)
    assert len(tab.run_panel.curves.points("loss", run=0)[0]) == 2
    assert len(tab.run_panel.curves.points("loss", run=1)[0]) == 2


def test_a_child_that_dies_shows_its_last_lines_and_offers_resume(qtbot, tab: TrainView, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FAKE_DIE", "1")
    data = write_dataset(tmp_path / "pets")
    ready(qtbot, tab, data)
    tab.run_panel.start_button.click()
    qtbot.waitUntil(lambda: tab.process is None, timeout=15_000)
    assert tab.progress.state == "failed"
    assert "SIGKILL" in tab.run_panel.error_label.text() and tab.run_panel.error_label.isVisibleTo(tab)
    box = tab.run_panel.stderr_box
    assert box.isVisibleTo(tab) and box.isReadOnly()
    assert box.toPlainText().splitlines()[-1] == "about to be killed"
    assert tab.run_panel.resume_button.isEnabled()


def test_a_refused_run_shows_the_error_as_plain_text(qtbot, tab: TrainView, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_REFUSE", "1")
    ready(qtbot, tab, write_dataset(tmp_path / "pets"))
    tab.run_panel.start_button.click()
    qtbot.waitUntil(lambda: tab.process is None, timeout=10_000)
    text = tab.run_panel.error_label.text()
    assert tab.progress.state == "failed" and "(usage)" in text and "<b>not</b> a number" in text
    assert "exit status 2" in text and not tab.run_panel.stderr_box.isVisibleTo(tab)
    assert tab.run_panel.start_button.isEnabled() and not tab.run_panel.resume_button.isEnabled()


def test_closing_during_a_run_asks_and_leaves_no_process(
    qtbot, window: MainWindow, fake_launcher, tmp_path, monkeypatch
):
    monkeypatch.setenv("FAKE_DELAY", "0.5")
    view = window.view(TrainView)
    window.show_tab(view)
    ready(qtbot, view, write_dataset(tmp_path / "pets"))
    view.run_panel.start_button.click()
    qtbot.waitUntil(lambda: view.progress.batch is not None, timeout=10_000)
    pid = view.process.pid
    questions = []
    answers = iter([False, True])
    view.ask_stop_and_close = lambda: questions.append(1) or next(answers)
    window.close()
    assert window.isVisible() and view.process is not None and not pid_gone(pid)  # "No": still running
    window.close()
    assert len(questions) == 2 and view.process is None
    deadline = time.monotonic() + 5
    while not pid_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_gone(pid)


def test_missing_trainer_explains_and_installs_with_a_log(qtbot, window: MainWindow, tmp_path, monkeypatch) -> None:
    """No trainer: the explanation and the install button; the install's output is shown
    and the tab checks again when it ends (the second check finds the fake)."""
    marker = tmp_path / "installed"
    script = tmp_path / "install.sh"
    script.write_text(f"echo collecting tensorflow\necho done > {marker}\n", encoding="utf-8")
    missing = TrainerMissing("Training needs TensorFlow: none found.", ("bash", str(script)), tmp_path, None)
    fake = Launcher((sys.executable, "-c", "pass"), "the newly installed one", "project-venv")
    monkeypatch.setattr(train_view, "find_launcher", lambda: fake if marker.exists() else missing)
    view = window.view(TrainView)
    window.show_tab(view)
    qtbot.waitUntil(lambda: view.missing is not None, timeout=10_000)
    assert "TensorFlow" in view.trainer_label.text() and view.install_button.isVisibleTo(view)
    assert not view.run_panel.start_button.isEnabled()
    view.install_button.click()
    qtbot.waitUntil(lambda: view.launcher is not None, timeout=30_000)
    assert "collecting tensorflow" in view.install_log.toPlainText()
    assert "newly installed" in view.trainer_label.text() and not view.install_button.isVisibleTo(view)


def test_settings_survive_a_restart(qtbot, window: MainWindow, fake_launcher) -> None:
    view = window.view(TrainView)
    view.settings_panel.set_advanced({"epochs": 7, "learning_rate": 0.01, "seed": 0})
    view.settings_panel.preset_combo.setCurrentIndex(view.settings_panel.preset_combo.findData("best"))
    view.save_settings(window.settings)
    other = MainWindow(provider="cpu", settings=window.settings)
    qtbot.addWidget(other)
    panel = other.view(TrainView).settings_panel
    assert panel.advanced() == {"epochs": 7, "learning_rate": 0.01, "seed": 0}
    assert panel.preset() == "best"
    other.close()


@pytest.mark.slow
def test_the_real_convnet_train_reaches_done_with_real_curves(qtbot, window: MainWindow, tmp_path: Path, monkeypatch):
    """The real `python -m training.cli` (lenet5, 2 epochs, from scratch) on tiny digits."""
    pytest.importorskip("tensorflow")
    launcher = Launcher((sys.executable, "-m", "training.cli"), "this Python", "this-python")
    monkeypatch.setattr(train_view, "find_launcher", lambda: launcher)
    view = window.view(TrainView)
    window.show_tab(view)
    data = write_dataset(tmp_path / "digits", classes=("zero", "one"), per_class=12)
    qtbot.waitUntil(lambda: "lenet5" in view.settings_panel.backbones, timeout=60_000)
    view.settings_panel.select_backbone("lenet5")
    view.settings_panel.set_advanced({"epochs": 2, "batch_size": 8})
    view.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: view.run_panel.start_button.isEnabled(), timeout=20_000)
    view.run_panel.start_button.click()
    qtbot.waitUntil(lambda: view.process is None, timeout=300_000)
    assert view.progress.state == "done", (view.progress.error, view.progress.stderr_tail)
    xs, ys = view.run_panel.curves.points("val_accuracy")
    assert xs == [1.0, 2.0] and all(0.0 <= y <= 1.0 for y in ys)
    assert len(view.run_panel.curves.points("loss")[0]) == 2
    assert view.run_panel.runs and view.run_panel.runs[0].status == "finished"
