"""Menu mnemonics: each Alt+letter (and each letter inside an open menu) reaches one thing.

Two menus on "m" (Camera and Model) made Alt+M open Camera; a clash inside a menu makes
the letter cycle between items instead of running one.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtGui import QAction

from desktop.qt.main_window import MainWindow


def mnemonic(text: str) -> str | None:
    """The letter after a single '&' ('&&' is a literal ampersand), lower-cased; None if there is none."""
    index = 0
    while index < len(text) - 1:
        if text[index] == "&":
            if text[index + 1] != "&":
                return text[index + 1].lower()
            index += 1
        index += 1
    return None


def _clashes(actions: list[QAction]) -> dict[str, list[str]]:
    visible = [a for a in actions if not a.isSeparator() and a.isVisible()]
    counts = Counter(m for m in (mnemonic(a.text()) for a in visible) if m)
    return {
        letter: [a.text() for a in visible if mnemonic(a.text()) == letter]
        for letter, count in counts.items()
        if count > 1
    }


def _all_menus(actions: list[QAction], trail: str = "") -> list[tuple[str, list[QAction]]]:
    found = []
    for action in actions:
        menu = action.menu()
        if menu is not None:
            name = f"{trail} → {action.text()}" if trail else action.text()
            menu.aboutToShow.emit()  # menus filled on demand (Recent models) fill now
            found.append((name, menu.actions()))
            found.extend(_all_menus(menu.actions(), name))
    return found


def test_mnemonic_parsing() -> None:
    assert mnemonic("Ca&mera") == "m" and mnemonic("&File") == "f"
    assert mnemonic("Save && quit") is None and mnemonic("Tom && &Jerry") == "j" and mnemonic("Plain") is None


def test_menu_bar_titles_have_unique_mnemonics(window: MainWindow) -> None:
    titles = window.menuBar().actions()
    assert all(mnemonic(a.text()) for a in titles), [a.text() for a in titles]
    assert _clashes(titles) == {}
    by_letter = {mnemonic(a.text()): a.text().replace("&", "") for a in titles}
    assert by_letter["m"] == "Model"


def test_items_in_every_menu_have_unique_mnemonics(window: MainWindow) -> None:
    menus = _all_menus(window.menuBar().actions())
    assert len(menus) >= 8  # File, Recent models, Batch, Camera, Augment, View, Model, provider, Help
    problems = {name: clashes for name, actions in menus if (clashes := _clashes(actions))}
    assert problems == {}
