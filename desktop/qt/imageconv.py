"""numpy RGB arrays to Qt images."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """Copy an HxWx3 uint8 RGB array into a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888)
    return image.copy()  # detach from the numpy buffer, which may be freed


def rgb_to_qpixmap(rgb: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(rgb_to_qimage(rgb))
