"""The percentage beside each class bar is readable over whatever lies behind it.

Measured from pixels. A row is rendered with its percentage and again with the text
blanked, once in the real palette and once in black on white, which shows where the
glyphs are and how much of each pixel they cover. Each glyph pixel's change in the real
rendering, over its change in black on white, is the contrast between text and background
right there; it must be high enough nearly everywhere, and the text must be one colour
over one background, in the light and the dark theme, on the selected top row and the
others, in the Classify and the Compare panel, under every style Qt offers here. Text
drawn inside a bar is at the style's mercy: Fusion paints it white over the fill and dark
over the rest, so the top bar's "52.6%" had its "6" half white, half dark, with a white
sliver past the end of the fill; other styles paint it all white once the bar is half full.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QProgressBar, QStyleFactory, QWidget

from desktop.core.classifier import Prediction
from desktop.qt.predictions_panel import PredictionsPanel
from desktop.qt.theme import make_palette

# Text whose colour differs from the background behind it by this much of the full
# black-to-white range, in some channel, can be read.
READABLE_CONTRAST = 0.35
Role = QPalette.ColorRole


def _grab(widget: QWidget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(np.int16)


def _text_owner(row: QWidget, text: str) -> QWidget:
    """Whichever child draws the percentage: a label, or the bar's own text."""
    for child in row.findChildren(QWidget):
        if isinstance(child, QProgressBar) and child.isTextVisible() and child.text() == text:
            return child
        if isinstance(child, QLabel) and child.text() == text:
            return child
    raise AssertionError(f"nothing in the row shows {text!r}")


def _set_text(owner: QWidget, text: str) -> None:
    if isinstance(owner, QProgressBar):
        owner.setFormat(text)
    else:
        owner.setText(text)


def _with_and_without(row: QWidget, owner: QWidget, text: str) -> tuple[np.ndarray, np.ndarray]:
    """`row` rendered showing `text`, and with the text blanked."""
    _set_text(owner, text)
    QApplication.processEvents()
    with_text = _grab(row)
    _set_text(owner, "")
    QApplication.processEvents()
    without_text = _grab(row)
    _set_text(owner, text)
    return with_text, without_text


def _difference(images: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per pixel: how much showing the text changes it (largest channel difference)."""
    return np.abs(images[0] - images[1]).max(axis=2)


def _spread(pixels: np.ndarray) -> int:
    """How far apart the colours of some pixels are (largest channel range)."""
    return int((pixels.max(axis=0) - pixels.min(axis=0)).max())


def _black_on_white(row: QWidget) -> None:
    palette = row.palette()
    for role in (Role.Window, Role.Base, Role.Button, Role.AlternateBase, Role.Highlight, Role.Light, Role.Midlight):
        palette.setColor(role, QColor("white"))
    for role in (Role.WindowText, Role.Text, Role.ButtonText, Role.HighlightedText):
        palette.setColor(role, QColor("black"))
    row.setPalette(palette)


@pytest.mark.parametrize("style", QStyleFactory.keys())
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("clickable", [True, False], ids=["classify", "compare"])
def test_percentages_are_readable_on_every_row(qtbot, style: str, dark: bool, clickable: bool) -> None:
    app = QApplication.instance()
    old_style, old_palette = app.style().name(), app.palette()
    app.setStyle(style)
    app.setPalette(make_palette(dark))
    try:
        panel = PredictionsPanel(clickable=clickable)
        qtbot.addWidget(panel)
        panel.resize(340, 260)
        probabilities = np.array([0.526, 0.47, 0.1, 0.05, 0.004])
        top_k = [(f"class {i}", float(p)) for i, p in enumerate(probabilities)]
        panel.show_prediction(Prediction(Path("cat.jpg"), None, top_k, probabilities, None, 1.0))
        panel.show()
        qtbot.waitExposed(panel)
        shown = panel.displayed()
        assert [text for _, text in shown] == [f"{p * 100:.1f}%" for p in probabilities]
        for row, (_, text) in zip(panel.rows, shown):
            owner = _text_owner(row, text)
            shown_text, behind = _with_and_without(row, owner, text)
            actual = _difference((shown_text, behind))
            _black_on_white(row)
            reference = _difference(_with_and_without(row, owner, text))
            where = f"({style}, {'dark' if dark else 'light'} theme, row {panel.rows.index(row)})"
            # Where a glyph covers at least half a pixel, the reference changes it by at
            # least half of 255; the real rendering changes it in proportion to the
            # contrast between text and background right there.
            ink = reference >= 128
            assert ink.sum() >= owner.fontMetrics().horizontalAdvance(text)  # the text is there at all
            contrast = actual[ink] / reference[ink]
            faint = contrast < READABLE_CONTRAST
            assert faint.mean() <= 0.01, (
                f"{text!r}: {faint.sum()} of its {ink.sum()} text pixels stand out by less than "
                f"{READABLE_CONTRAST:.0%} {where}"
            )
            # One colour over one background: a glyph split between two colours (the "6"
            # of "52.6%" half white over the fill, half dark over the rest) reads badly
            # even where each half has contrast. Solid glyph pixels only (90 % covered),
            # so anti-aliased edges stay out of it.
            solid = reference >= 230
            assert _spread(shown_text[solid]) <= 48, f"{text!r} is drawn in more than one colour {where}"
            assert _spread(behind[solid]) <= 48, f"{text!r} lies over more than one background {where}"
    finally:
        app.setStyle(old_style)
        app.setPalette(old_palette)
