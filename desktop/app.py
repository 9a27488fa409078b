"""convnet-studio: the desktop image classifier window.

Usage: convnet-studio [MODEL.onnx] [IMAGES...] [--provider auto|cuda|cpu]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop.core.model import PROVIDER_CHOICES
from desktop.core.paths import default_model_path
from desktop.qt.environment import scrub_opencv_qt_env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-studio", description="Classify images by dropping them on a window.")
    parser.add_argument("files", nargs="*", metavar="FILE", help="an .onnx model and/or images to open")
    parser.add_argument("--provider", choices=PROVIDER_CHOICES, default="auto", help="execution provider")
    return parser


def split_model_and_images(files: Sequence[str]) -> tuple[Path | None, list[Path]]:
    """The first .onnx argument is the model; everything else is an image or folder."""
    model: Path | None = None
    images: list[Path] = []
    for name in files:
        path = Path(name)
        if model is None and path.suffix.lower() == ".onnx":
            model = path
        else:
            images.append(path)
    return model, images


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model_path, images = split_model_and_images(args.files)
    # Importing desktop.core imported cv2, which points Qt at its own Qt5 plugins.
    scrub_opencv_qt_env()
    from PySide6.QtWidgets import QApplication

    from desktop.qt.main_window import APP_NAME, MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    window = MainWindow(provider=args.provider)
    window.show()
    if model_path is None:
        model_path = default_model_path()
        if model_path.exists():
            window.open_model(model_path)
    else:
        window.open_model(model_path)
    if images:
        window.open_images(images)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
