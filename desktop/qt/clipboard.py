"""Images from the clipboard: pixels (a screenshot) or an image file's URL (a file manager copy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage

from convnet_common.imaging import IMAGE_EXTENSIONS


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """Copy any QImage into an HxWx3 uint8 RGB array (alpha is dropped)."""
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = converted.width(), converted.height(), converted.bytesPerLine()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def clipboard_content(mime: QMimeData | None) -> tuple[list[Path], np.ndarray | None]:
    """(image files named by URLs, pixels) on the clipboard; files win over pixels."""
    if mime is None:
        return [], None
    if mime.hasUrls():
        files = [
            Path(url.toLocalFile())
            for url in mime.urls()
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_EXTENSIONS
        ]
        if files:
            return files, None
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QImage) and not image.isNull():
            return [], qimage_to_rgb(image)
    if mime.hasText():
        text = mime.text().strip()
        candidate = Path(text.removeprefix("file://")) if text and "\n" not in text else None
        if candidate is not None and candidate.suffix.lower() in IMAGE_EXTENSIONS and candidate.is_file():
            return [candidate], None
    return [], None
