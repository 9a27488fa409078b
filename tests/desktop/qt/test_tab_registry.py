"""Tabs come from one list (desktop/qt/tabs.py): the window gives each its tab, menus and shutdown.

So a new tab is one module and one registration line, and closing the window stops
every tab's workers without anyone keeping a second list of them.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.qt import tabs
from desktop.qt.main_window import MainWindow
from desktop.qt.tab_view import MODEL_MENU, MenuEntry, TabHost, TabView
from desktop.qt.tabs import TAB_VIEWS


class TinyView(TabView, QWidget):
    """The smallest possible tab: a label, its own menu with one entry, one in the Model menu."""

    tab_title = "&Tiny"
    tab_shortcut = "Ctrl+9"
    menu_title = "&Tiny"

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        QVBoxLayout(self).addWidget(QLabel("tiny"))
        self.pokes = 0
        self.host: TabHost | None = None
        self.shown = 0
        self.stopped = 0

    def menu_entries(self) -> list[MenuEntry]:
        return [
            MenuEntry("&Poke", "Ctrl+Shift+9", self.poke),
            MenuEntry("Poke from &Model", "", self.poke, menu=MODEL_MENU, in_tab=False),
        ]

    def poke(self) -> None:
        self.pokes += 1

    def attach(self, host: TabHost) -> None:
        self.host = host

    def tab_shown(self) -> None:
        self.shown += 1

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.stopped += 1


def _menu(window: MainWindow, title: str):
    return next(a.menu() for a in window.menuBar().actions() if a.text() == title)


def test_every_registered_view_is_shut_down_when_the_window_closes(qtbot) -> None:
    window = MainWindow(provider="cpu")
    qtbot.addWidget(window)
    assert [type(view) for view in window.views] == list(TAB_VIEWS)
    stopped: list[str] = []
    for view in window.views:
        original = view.shutdown
        view.shutdown = lambda *args, _v=view, _o=original, **kwargs: (stopped.append(type(_v).__name__), _o())
    window.show()
    window.close()
    assert sorted(stopped) == sorted(cls.__name__ for cls in TAB_VIEWS)


def test_registering_a_tiny_view_adds_its_tab_menus_and_shutdown(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(tabs, "TAB_VIEWS", (*TAB_VIEWS, TinyView))  # the one registration line
    window = MainWindow(provider="cpu")
    qtbot.addWidget(window)
    window.show()
    tiny = window.view(TinyView)
    assert tiny.host is window
    assert window.tabs.tabText(window.tabs.count() - 1) == "Tiny"

    tab_action = next(a for a in window.view_menu.actions() if a.text() == "&Tiny tab")
    assert tab_action.shortcut().toString() == "Ctrl+9"
    tab_action.trigger()
    assert window.tabs.currentWidget() is tiny and tiny.shown == 1

    window.tabs.setCurrentIndex(0)
    own = _menu(window, "&Tiny")
    assert [a.text() for a in own.actions()] == ["&Poke"]
    own.actions()[0].trigger()  # an entry in the view's own menu shows its tab first
    assert tiny.pokes == 1 and window.tabs.currentWidget() is tiny
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Tiny") < titles.index("&View")  # views' menus stand before View

    window.tabs.setCurrentIndex(0)
    model_entry = next(a for a in _menu(window, "&Model").actions() if a.text() == "Poke from &Model")
    model_entry.trigger()
    assert tiny.pokes == 2 and window.tabs.currentIndex() == 0  # in_tab=False: no tab switch

    window.close()
    assert tiny.stopped == 1
