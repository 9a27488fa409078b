"""By default a run trains with the Augment tab's current settings: what the preview shows is what training does."""

from __future__ import annotations

from pathlib import Path

from fake_trainer import write_dataset

from desktop.qt import train_view
from desktop.qt.augment_view import AugmentView
from desktop.qt.main_window import MainWindow
from desktop.qt.train_settings_panel import AUGMENT_TAB
from desktop.qt.train_view import AUGMENT_FILE, TrainView


def test_a_run_uses_the_augment_tabs_settings_unless_told_otherwise(
    qtbot, window: MainWindow, tab: TrainView, tmp_path
):
    assert tab.settings_panel.augment_choice() == AUGMENT_TAB
    expected = train_view.aug.to_yaml(window.view(AugmentView).params())
    data = write_dataset(tmp_path / "pets")
    qtbot.waitUntil(lambda: "fakenet" in tab.settings_panel.backbones, timeout=30_000)
    tab.settings_panel.select_backbone("fakenet")
    tab.settings_panel.set_advanced({"epochs": 1})
    tab.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: tab.run_panel.start_button.isEnabled(), timeout=20_000)
    tab.run_panel.start_button.click()
    assert tab.process is not None
    augment_arg = next(arg for arg in tab.process.argv if arg.startswith("--augment="))
    path = Path(augment_arg.split("=", 1)[1])  # RUN_DIR/augment.yaml, the Augment tab's settings
    assert path.name == AUGMENT_FILE and path.read_text(encoding="utf-8") == expected
    qtbot.waitUntil(lambda: tab.process is None, timeout=20_000)
