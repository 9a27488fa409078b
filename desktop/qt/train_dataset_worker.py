"""The dataset scan off the GUI thread: desktop.core.dataset_scan plus each class's thumbnail strip.

A scan decodes every image of a folder that may hold tens of thousands, so it runs in a
TaskRunner pool (desktop.qt.workers); the thumbnails are decoded there too, as numpy
strips, and only turned into pixmaps on the GUI thread. The task reports progress,
stops when cancelled (and then emits nothing but `finished`), and turns any error into
a one-line message: the panel shows it instead of the app failing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal

from convnet_common.imaging import ImageReadError, load_image_rgb, resize_for_model
from desktop.core.dataset_scan import DatasetScan, ScanCancelled, scan_dataset
from desktop.qt.workers import BackgroundTask, TaskSignals

THUMB_PX = 48
GAP_PX = 4
BACKGROUND = 235  # light grey behind letterboxed thumbnails and in the gaps


class DatasetScanSignals(TaskSignals):
    progress = Signal(int, int, int)  # done, total (0: still listing folders), generation
    scanned = Signal(object, object, int)  # DatasetScan, {class name: RGB strip}, generation
    failed = Signal(str, int)  # message, generation


def thumbnail(path: Path, size: int = THUMB_PX) -> np.ndarray | None:
    """The image fitted into a size x size square (aspect kept), or None if unreadable."""
    try:
        rgb = load_image_rgb(path)
    except ImageReadError:
        return None
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    fitted = resize_for_model(rgb, max(1, round(height * scale)), max(1, round(width * scale)))
    square = np.full((size, size, 3), BACKGROUND, np.uint8)
    top, left = (size - fitted.shape[0]) // 2, (size - fitted.shape[1]) // 2
    square[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    return square


def strip(paths: tuple[Path, ...], size: int = THUMB_PX) -> np.ndarray | None:
    """Thumbnails side by side with a gap, or None when none can be read."""
    thumbs = [t for t in (thumbnail(p, size) for p in paths) if t is not None]
    if not thumbs:
        return None
    gap = np.full((size, GAP_PX, 3), BACKGROUND, np.uint8)
    pieces = [piece for thumb in thumbs for piece in (thumb, gap)][:-1]
    return np.ascontiguousarray(np.concatenate(pieces, axis=1))


class DatasetScanTask(BackgroundTask):
    def __init__(self, path: Path, generation: int) -> None:
        super().__init__()
        self.signals = DatasetScanSignals()
        self.path = path
        self.generation = generation

    def work(self) -> None:
        try:
            scan = scan_dataset(self.path, self._progress, self.cancel_event)
            strips = self._strips(scan)
        except ScanCancelled:
            return
        except OSError as error:
            if not self.cancelled:
                self.signals.failed.emit(f"cannot scan {self.path}: {error.strerror or error}", self.generation)
            return
        except Exception as error:  # noqa: BLE001 - shown in the panel, never a crash
            if not self.cancelled:
                self.signals.failed.emit(f"scan failed: {type(error).__name__}: {error}", self.generation)
            return
        if not self.cancelled:
            self.signals.scanned.emit(scan, strips, self.generation)

    def _progress(self, done: int, total: int) -> None:
        if not self.cancelled:
            self.signals.progress.emit(done, total, self.generation)

    def _strips(self, scan: DatasetScan) -> dict[str, np.ndarray]:
        strips: dict[str, np.ndarray] = {}
        for info in scan.classes:
            if self.cancelled:
                raise ScanCancelled()
            made = strip(info.samples)
            if made is not None:
                strips[info.name] = made
        return strips
