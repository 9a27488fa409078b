"""Bad input in the Train tab: each case is said in the tab, in words, and nothing is lost.

An empty folder, one class and a class with a single image cannot be trained on: Start
stays off and the tab says why. A run folder that cannot be made, and a child that
stops with an error (a full disk in the middle of a run), are reported in the tab; the
dataset is untouched. The fake convnet-train is fake_trainer.py's (the `tab` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_trainer import FAKE, write_dataset

from desktop.qt import train_view
from desktop.qt.train_view import TrainView


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("classes", "words"), [((), "no class folders"), (("cats",), "one class")])
def test_a_dataset_that_cannot_be_trained_keeps_start_off_and_says_why(
    qtbot, tab: TrainView, tmp_path: Path, classes, words
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if classes:
        write_dataset(data, classes=classes)
    before = _snapshot(data)
    qtbot.waitUntil(lambda: tab.launcher is not None, timeout=30_000)
    tab.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: tab.dataset_panel.current_scan() is not None, timeout=20_000)
    assert not tab.run_panel.start_button.isEnabled()
    assert "cannot be trained on yet" in tab.run_panel.state_label.text()
    warnings = " ".join(tab.dataset_panel.warning_texts()).lower()
    assert words in warnings, warnings
    tab.start()  # even asked for directly (a menu, Retrain), nothing starts and the reason is said
    assert tab.process is None and "cannot be trained on yet" in tab.run_panel.state_label.text()
    assert _snapshot(data) == before


def test_a_class_with_one_image_is_warned_about_as_training_will_treat_it(qtbot, tab: TrainView, tmp_path: Path):
    """Training keeps a one-image class for training only (it cannot be split): allowed, and said."""
    data = write_dataset(tmp_path / "data", classes=("cats", "dogs"))
    for extra in list((data / "cats").iterdir())[1:]:
        extra.unlink()
    qtbot.waitUntil(lambda: tab.launcher is not None, timeout=30_000)
    tab.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: tab.dataset_panel.current_scan() is not None, timeout=20_000)
    warnings = " ".join(tab.dataset_panel.warning_texts())
    assert "class 'cats' has 1 image: too few to split into training and validation" in warnings, warnings


def test_a_run_folder_that_cannot_be_made_is_said_and_nothing_starts(
    qtbot, tab: TrainView, tmp_path: Path, monkeypatch
) -> None:
    data = write_dataset(tmp_path / "pets")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder would go")
    monkeypatch.setattr(train_view, "fresh_run_dir", lambda data_dir, backbone: blocker / "run")
    qtbot.waitUntil(lambda: "fakenet" in tab.settings_panel.backbones, timeout=30_000)
    tab.settings_panel.select_backbone("fakenet")
    tab.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: tab.run_panel.start_button.isEnabled(), timeout=20_000)
    tab.run_panel.start_button.click()
    assert tab.process is None
    assert tab.run_panel.state_label.text().startswith(f"Could not prepare the run folder {blocker / 'run'}")


def test_a_disk_full_mid_run_is_reported_with_the_resume_offer(qtbot, tab: TrainView, tmp_path: Path) -> None:
    """The child's error event (what convnet-train sends when a write fails) reaches the tab as words."""
    data = write_dataset(tmp_path / "pets")
    before = _snapshot(data)
    # The tab runs `models --json` through the script as soon as it finds it: wait for that
    # answer before swapping the script, and swap it by rename, so no child ever reads a
    # half-written file (a truncate-then-write here once gave the list an empty script).
    qtbot.waitUntil(lambda: "fakenet" in tab.settings_panel.backbones, timeout=30_000)
    marker = '        if os.environ.get("FAKE_DIE"):'
    disk_full = (
        "        if epoch == 2:\n"
        '            emit("error", kind="internal", message="[Errno 28] No space left on device")\n'
        "            sys.exit(1)\n"
    )
    assert marker in FAKE
    script = Path(tab.launcher.argv[1])
    staged = script.with_suffix(".staged")
    staged.write_text(FAKE.replace(marker, disk_full + marker), encoding="utf-8")
    staged.replace(script)
    tab.settings_panel.select_backbone("fakenet")
    tab.settings_panel.set_advanced({"epochs": 4})
    tab.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: tab.run_panel.start_button.isEnabled(), timeout=20_000)
    tab.run_panel.start_button.click()
    qtbot.waitUntil(lambda: tab.process is None, timeout=20_000)
    text = tab.run_panel.error_label.text()
    assert tab.progress.state == "failed" and "No space left on device" in text, text
    assert tab.run_panel.resume_button.isEnabled()  # epoch 1's resume point is there
    assert _snapshot(data) == before
