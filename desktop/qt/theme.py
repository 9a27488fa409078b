"""Light and dark themes that follow the system colour scheme.

Fusion with an explicit palette looks the same on every platform, including the
offscreen and Xvfb platforms, which have no native style of their own. Widgets that
need colours outside the palette (the notice bar) ask `notice_style()`.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEME_ENV = "CONVNET_STUDIO_THEME"  # "light" or "dark" overrides the system (e.g. on Xvfb)


def is_dark() -> bool:
    """True when $CONVNET_STUDIO_THEME is 'dark', or the system asks for dark (Qt 6.5+ style hints)."""
    override = os.environ.get(THEME_ENV, "").strip().lower()
    if override in ("light", "dark"):
        return override == "dark"
    app = QGuiApplication.instance()
    if app is None:
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def make_palette(dark: bool) -> QPalette:
    palette = QPalette()
    if dark:
        colours = {
            QPalette.ColorRole.Window: "#2b2d31",
            QPalette.ColorRole.WindowText: "#e6e6e6",
            QPalette.ColorRole.Base: "#1f2023",
            QPalette.ColorRole.AlternateBase: "#2f3136",
            QPalette.ColorRole.Text: "#e6e6e6",
            QPalette.ColorRole.Button: "#35373c",
            QPalette.ColorRole.ButtonText: "#e6e6e6",
            QPalette.ColorRole.ToolTipBase: "#3a3c42",
            QPalette.ColorRole.ToolTipText: "#f0f0f0",
            QPalette.ColorRole.Highlight: "#3d7bd9",
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#7fb0ff",
            QPalette.ColorRole.PlaceholderText: "#8b8e95",
            QPalette.ColorRole.Mid: "#4a4c52",
        }
        disabled = "#7d8087"
    else:
        colours = {
            QPalette.ColorRole.Window: "#f3f3f5",
            QPalette.ColorRole.WindowText: "#1d1d1f",
            QPalette.ColorRole.Base: "#ffffff",
            QPalette.ColorRole.AlternateBase: "#f0f0f3",
            QPalette.ColorRole.Text: "#1d1d1f",
            QPalette.ColorRole.Button: "#e9e9ec",
            QPalette.ColorRole.ButtonText: "#1d1d1f",
            QPalette.ColorRole.ToolTipBase: "#ffffe1",
            QPalette.ColorRole.ToolTipText: "#1d1d1f",
            QPalette.ColorRole.Highlight: "#2f6fce",
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#1f5fbf",
            QPalette.ColorRole.PlaceholderText: "#8a8a8f",
            QPalette.ColorRole.Mid: "#b8b8bd",
        }
        disabled = "#9a9aa0"
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return palette


def notice_style(dark: bool | None = None, selector: str = "QLabel") -> str:
    """Stylesheet for the notice bar: amber, with enough contrast in either scheme.

    `selector` names what gets the box (the bar's frame, which holds text and a close button).
    """
    dark = is_dark() if dark is None else dark
    if dark:
        return selector + " { background: #4a3b00; color: #ffe28a; border: 1px solid #8a6d00; padding: 6px; }"
    return selector + " { background: #fff4cc; color: #5a4500; border: 1px solid #e6c95c; padding: 6px; }"


class ThemeManager(QObject):
    """Applies Fusion + a palette now and again whenever the system scheme changes."""

    changed = Signal(bool)  # dark

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.app = app
        app.setStyle("Fusion")
        self.apply()
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.apply)

    def apply(self, *_args: object) -> None:
        dark = is_dark()
        self.app.setPalette(make_palette(dark))
        self.changed.emit(dark)


def install_theme(app: QApplication) -> ThemeManager:
    """Create (once) the app's theme manager."""
    existing = app.findChild(ThemeManager)
    return existing if existing is not None else ThemeManager(app)
