"""convnet-studio: the desktop image classifier window.

Usage: convnet-studio [MODEL.onnx] [IMAGES...] [--provider auto|cuda|cpu] [--exit-when-ready]
       convnet-studio --install-launcher | --uninstall-launcher
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop.core.paths import default_model_path
from desktop.core.providers import PROVIDER_CHOICES
from desktop.qt.environment import scrub_opencv_qt_env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-studio", description="Classify images by dropping them on a window.")
    parser.add_argument("files", nargs="*", metavar="FILE", help="an .onnx model and/or images to open")
    parser.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default=None,
        help="execution provider (default: the last one chosen in the app, else auto)",
    )
    parser.add_argument(
        "--exit-when-ready",
        action="store_true",
        help="for benchmarks: quit as soon as the window is shown with its model loaded, "
        "printing start-up time and memory as JSON",
    )
    launcher = parser.add_mutually_exclusive_group()
    launcher.add_argument("--install-launcher", action="store_true", help="add ConvNet Studio to the desktop menu")
    launcher.add_argument("--uninstall-launcher", action="store_true", help="remove what --install-launcher added")
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


def startup_model(settings_recent: Sequence[Path]) -> Path | None:
    """The model to open when none is named: the most recent one that still exists, else the bundled one."""
    for path in settings_recent:
        if path.is_file():
            return path
    default = default_model_path()
    return default if default.exists() else None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.install_launcher or args.uninstall_launcher:
        from desktop import launcher

        return launcher.main(install=args.install_launcher)
    model_path, images = split_model_and_images(args.files)
    # Importing desktop.core imported cv2, which points Qt at its own Qt5 plugins.
    scrub_opencv_qt_env()
    from PySide6.QtWidgets import QApplication

    from desktop.qt.main_window import APP_NAME, MainWindow
    from desktop.qt.theme import install_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop.qt import gui_thread_gc

    gui_thread_gc.install(app)  # a worker thread must never destroy Qt objects (see there)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName("convnet-studio")
    icon = Path(__file__).resolve().parent / "resources" / "convnet-studio.png"
    if icon.exists():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    install_theme(app)
    window = MainWindow(provider=args.provider)
    window.show()
    model_path = model_path or startup_model(window.settings.recent_models())
    outcome = None
    if args.exit_when_ready:
        from desktop.startup_probe import exit_when_ready

        outcome = exit_when_ready(app, window)
    if outcome is not None and model_path is None:
        print(json.dumps({"error": "no model to load: none named and the bundled one is missing"}), flush=True)
        return 1
    if model_path is not None:
        window.open_model(model_path)
    if images:
        window.open_images(images)
    status = app.exec()
    return outcome.get("status", status) if outcome is not None else status


if __name__ == "__main__":
    sys.exit(main())
