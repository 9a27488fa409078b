"""What a tab of the main window provides, and what the window offers it in return.

The window (desktop/qt/main_window.py) knows no tab by name: it builds every class in
`desktop.qt.tabs.TAB_VIEWS`, and for each adds the tab and its View-menu shortcut, the
menu entries it declares, its saved settings, and its `shutdown` when the window closes.
So a new tab is one module and one line in that list, and no tab can be left running
after the window is gone because someone forgot to add it to a hand-written list.

A view reaches the window and the other tabs only through `TabHost` (passed to
`attach`), never through the window's own attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from PySide6.QtWidgets import QWidget

from desktop.core.settings import Settings

V = TypeVar("V", bound="TabView")

# Menus of the window that views may add entries to, besides their own (MenuEntry.menu).
FILE_MENU = "file"
VIEW_MENU = "view"
MODEL_MENU = "model"
OWN_MENU = ""


@dataclass(frozen=True)
class MenuEntry:
    """One menu action a view contributes.

    `menu` is OWN_MENU (the view's menu, TabView.menu_title) or one of the window's menus
    (FILE_MENU, VIEW_MENU, MODEL_MENU), where entries go in tab order at a fixed place.
    With `in_tab` the view's tab is shown first, so the result is visible. `checked`
    makes the action checkable with that initial state; `checked_signal` and
    `enabled_signal` (a bound Qt signal carrying a bool) keep it in step with the view.
    `name` files the action under `window.named_actions[name]` for code that needs it.
    """

    text: str
    shortcut: Any  # str or QKeySequence.StandardKey
    slot: Callable[..., object]
    tip: str = ""
    menu: str = OWN_MENU
    in_tab: bool = True
    checked: bool | None = None
    checked_signal: Any = None
    enabled_signal: Any = None
    enabled: bool = True
    name: str = ""


class TabHost(Protocol):
    """The window as a view sees it."""

    settings: Settings

    def view(self, cls: type[V]) -> V: ...
    def show_tab(self, view: QWidget) -> None: ...
    def show_status(self, text: str, timeout_ms: int = 8000) -> None: ...
    def show_error(self, title: str, text: str) -> None: ...
    def show_inference_ms(self, ms: float) -> None: ...
    def open_model(self, path: str | Path) -> None: ...  # load a model as the window's (Classify's) model


class TabView:
    """Mixin for a QWidget that is a tab of the main window; every hook has a do-nothing default.

    Class attributes: `tab_title` ("&Batch": the &-letter is its View-menu mnemonic),
    `tab_shortcut` ("Ctrl+2") and `menu_title` (its own menu before View; None: none).
    """

    tab_title: ClassVar[str] = ""
    tab_shortcut: ClassVar[str] = ""
    menu_title: ClassVar[str | None] = None

    def menu_entries(self) -> Sequence[MenuEntry]:
        """The actions this tab offers in menus (see MenuEntry)."""
        return ()

    def attach(self, host: TabHost) -> None:
        """Connect to the window and to other tabs, once every tab exists."""

    def restore_settings(self, settings: Settings) -> None:
        """Take back what save_settings stored (called once, after attach)."""

    def save_settings(self, settings: Settings) -> None:
        """Store what should survive a restart (called when the window closes)."""

    def tab_shown(self) -> None:
        """The user switched to this tab."""

    def confirm_close(self) -> bool:
        """May the window close now? A tab whose work would be lost (a training run) asks the
        user; False keeps the window open. Called for every tab before any shutdown."""
        return True

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop and wait for this tab's background work: called for every tab as the window closes."""
