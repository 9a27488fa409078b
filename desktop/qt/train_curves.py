"""Loss and accuracy curves of one run, or two runs side by side, drawn with pyqtgraph.

pyqtgraph rather than hand-drawn: it redraws hundreds of points per second without
work on our side, and gives zoom, pan and auto-range for free. Its legend and labels
are rich text (HTML), and run names come from folder names on disk, so every name that
reaches it is escaped here first (desktop/qt/plain_text.py explains why).

The first run is drawn solid, a second (compared) one dashed; training is one colour,
validation another; a vertical line marks where each later stage (fine-tuning) began.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from desktop.core.run_history import EpochRecord

TRAIN_COLOUR, VAL_COLOUR = "#1f77b4", "#ff7f0e"
STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine)
SERIES = (("loss", "val_loss"), ("accuracy", "val_accuracy"))


def _points(records: Sequence[EpochRecord], field: str) -> tuple[list[int], list[float]]:
    pairs = [(r.epoch, getattr(r, field)) for r in sorted(records, key=lambda r: r.epoch)]
    pairs = [(x, y) for x, y in pairs if y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def stage_boundaries(records: Sequence[EpochRecord], stage_starts: dict[int, int] | None = None) -> list[int]:
    """The first epoch of every stage after the first: from the stage events when known,
    else from where the history's stage column changes."""
    if stage_starts:
        return sorted(first for stage, first in stage_starts.items() if stage > 1)
    ordered = sorted(records, key=lambda r: r.epoch)
    return [b.epoch for a, b in zip(ordered, ordered[1:]) if a.stage is not None and b.stage not in (None, a.stage)]


class CurvesWidget(QWidget):
    """Two plots (loss, accuracy) sharing the epoch axis; `show_runs` draws one or two runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget()
        self.accuracy_plot = pg.PlotWidget()
        for plot, title in ((self.loss_plot, "loss"), (self.accuracy_plot, "accuracy")):
            plot.setBackground(None)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("left", title)
            plot.setLabel("bottom", "epoch")
            plot.addLegend(offset=(-10, 10))
            plot.setMinimumHeight(150)
            plot.getAxis("left").enableAutoSIPrefix(False)  # 0.3 stays 0.3, never "300 (x0.001)"
        self.accuracy_plot.setYRange(0.0, 1.0, padding=0.02)  # accuracy is a share: always the whole scale
        self.accuracy_plot.enableAutoRange(axis="y", enable=False)
        self.accuracy_plot.setXLink(self.loss_plot)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.accuracy_plot)
        self.curves: dict[str, pg.PlotDataItem] = {}  # "<run index>:<field>" -> item, for tests
        self.boundaries: list[int] = []

    def clear(self) -> None:
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.clear()
            if plot.plotItem.legend is not None:
                plot.plotItem.legend.clear()
        self.curves = {}
        self.boundaries = []

    def show_runs(self, runs: Sequence[tuple[str, Sequence[EpochRecord], dict[int, int] | None]]) -> None:
        """Draw up to two runs: (name, epochs, stage starts or None) each. Names are escaped."""
        self.clear()
        several = len(runs) > 1
        for index, (name, records, stage_starts) in enumerate(runs[:2]):
            style = STYLES[index]
            prefix = f"{html.escape(name)}: " if several else ""
            for plot, (train_field, val_field) in zip((self.loss_plot, self.accuracy_plot), SERIES):
                for field, colour, what in (
                    (train_field, TRAIN_COLOUR, "training"),
                    (val_field, VAL_COLOUR, "validation"),
                ):
                    xs, ys = _points(records, field)
                    pen = pg.mkPen(colour, width=2, style=style)
                    item = plot.plot(xs, ys, pen=pen, symbol="o", symbolSize=5, symbolBrush=colour, name=prefix + what)
                    self.curves[f"{index}:{field}"] = item
            if index == 0:
                self.boundaries = stage_boundaries(records, stage_starts)
                for plot in (self.loss_plot, self.accuracy_plot):
                    for epoch in self.boundaries:
                        # A stage's first epoch n is plotted at x = n; its line goes just before it.
                        line = pg.InfiniteLine(epoch - 0.5, angle=90, pen=pg.mkPen("#888", style=Qt.PenStyle.DotLine))
                        line.setToolTip("fine-tuning starts here")
                        plot.addItem(line)

    def points(self, field: str, run: int = 0) -> tuple[list[float], list[float]]:
        """The x and y values drawn for `field` of run `run` (for tests and checks)."""
        item = self.curves.get(f"{run}:{field}")
        if item is None or item.xData is None:
            return [], []
        return [float(x) for x in item.xData], [float(y) for y in item.yData]
