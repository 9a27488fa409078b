"""One table of result formats (desktop.core.exporters): every format has a Batch button and a menu entry.

That every format is a CLI option is tested without Qt in tests/desktop/core/test_exporters.py.
"""

from __future__ import annotations

from desktop.core.exporters import EXPORTERS
from desktop.qt.batch_view import BatchView
from desktop.qt.main_window import MainWindow


def test_every_format_has_a_batch_button_and_a_menu_entry(window: MainWindow) -> None:
    batch = window.view(BatchView)
    assert [b.text() for b in batch.export_buttons.values()] == [e.button_text for e in EXPORTERS]
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Batch")
    texts = {a.text(): a.shortcut().toString() for a in menu.actions()}
    assert all(texts[e.menu_text] == e.shortcut for e in EXPORTERS)
