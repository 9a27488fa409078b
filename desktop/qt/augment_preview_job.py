"""The Augment tab's background work: decode an image, shrink it, render the variants.

Kept apart from augment_view.py, which decides when a job runs (one at a time, the next
with the latest settings) and shows its result. A job runs on a worker thread and never
touches widgets: it hands a PreviewResult back through a queued signal. Shrinking a 12 MP
photo alone takes ~40 ms (plus decoding) and a 12-tile grid 17-25 ms on 2 cores, too
slow for the GUI thread on every slider step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Signal

from convnet_common.imaging import ImageReadError, load_image_rgb
from desktop.core import augmentation as aug
from desktop.core.augmentation import AugmentParams


@dataclass
class PreviewResult:
    """What a job hands back; `load_id` tells a stale result (another image was opened
    since the job started) from the one to show."""

    load_id: int
    source: np.ndarray | None = None
    tiles: list[np.ndarray] | None = None
    error: str = ""


class _PreviewSignals(QObject):
    done = Signal(object)  # PreviewResult


class PreviewJob(QRunnable):
    """Decode (if given a path) or take a new image, shrink it, and render the variants; never touches widgets."""

    def __init__(
        self,
        load_id: int,
        path: Path | None,
        source: np.ndarray | None,
        params: AugmentParams,
        units: np.ndarray,
        new_source: bool = False,
        name: str = "",
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = _PreviewSignals()
        self.load_id, self.path, self.source, self.params, self.units = load_id, path, source, params, units
        self.new_source = new_source or path is not None  # True: `source` is an unshrunk new image
        self.name = name  # what the source label calls a new image

    def run(self) -> None:
        result = PreviewResult(self.load_id)
        try:
            source = self.source
            if self.path is not None:
                source = aug.preview_source(load_image_rgb(self.path))
            elif self.new_source and source is not None:
                source = aug.preview_source(source)
            result.source = source
            result.tiles = aug.variants(source, self.params, self.units)
        except ImageReadError as error:
            result.error = str(error)
        except Exception as error:  # noqa: BLE001 - shown to the user instead of lost in a thread
            result.error = f"could not preview this image: {error}"
        self.signals.done.emit(result)
