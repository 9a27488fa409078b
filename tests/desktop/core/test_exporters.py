"""One table of result formats (desktop.core.exporters) serves the CLI, the Batch buttons and the menu."""

from __future__ import annotations

from desktop.classify_cli import build_parser
from desktop.core.exporters import EXPORTERS
from desktop.qt.batch_view import BatchView
from desktop.qt.main_window import MainWindow


def test_every_format_is_a_cli_option() -> None:
    options = {option for action in build_parser()._actions for option in action.option_strings}
    assert {f"--{e.kind}" for e in EXPORTERS} <= options


def test_every_format_has_a_batch_button_and_a_menu_entry(window: MainWindow) -> None:
    batch = window.view(BatchView)
    assert [b.text() for b in batch.export_buttons.values()] == [e.button_text for e in EXPORTERS]
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Batch")
    texts = {a.text(): a.shortcut().toString() for a in menu.actions()}
    assert all(texts[e.menu_text] == e.shortcut for e in EXPORTERS)
