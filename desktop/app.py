"""convnet-studio: the desktop image classifier window.

Usage: convnet-studio [MODEL.onnx] [IMAGES...] [--provider auto|cuda|cpu] [--exit-when-ready]
       convnet-studio --install-launcher | --uninstall-launcher
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop.core.providers import PROVIDER_CHOICES
from desktop.core.paths import default_model_path
from desktop.qt.environment import scrub_opencv_qt_env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-studio", description="Classify images by dropping them on a window.")
    parser.add_argument("files", nargs="*", metavar="FILE", help="an .onnx model and/or images to open")
    parser.add_argument("--provider", choices=PROVIDER_CHOICES, default=None,
                        help="execution provider (default: the last one chosen in the app, else auto)")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="for benchmarks: quit as soon as the window is shown with its model loaded, "
                             "printing start-up time and memory as JSON")
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


def process_age_s() -> float | None:
    """Seconds since this process was started, from /proc (Linux); None where that is unavailable.

    Counting from the kernel's start time includes the interpreter's own start-up and
    imports, which a timer started in Python would miss.
    """
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii", errors="replace")
        # Field 2 (the command name) may contain spaces; field 3 starts after its last ')'.
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[22 - 3])
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return None


def resident_mb() -> float | None:
    """VmRSS in MB (10^6 bytes) from /proc/self/status; None where that is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def exit_when_ready(app, window) -> dict[str, int]:
    """Quit once the model has loaded into the shown window, printing one JSON line to stdout.

    Returns the holder of the exit status (0 when ready, 1 when the model failed), filled
    in by the controller's signals while the event loop runs.
    """
    from PySide6.QtCore import QTimer

    outcome: dict[str, int] = {}

    def finish(report: dict[str, object], status: int) -> None:
        if outcome:  # a second load finishing later changes nothing
            return
        outcome["status"] = status
        print(json.dumps(report), flush=True)
        window.close()  # the normal shutdown path: views and worker threads stop cleanly
        app.quit()

    def ready(model) -> None:
        # One more turn of the event loop, so the window has applied the model and painted.
        QTimer.singleShot(0, lambda: finish(
            {"ready_s": process_age_s(), "rss_mb": resident_mb(), "model": model.info.name,
             "provider": model.provider_in_use, "window_shown": window.isVisible()}, 0))

    window.controller.model_changed.connect(ready)
    window.controller.model_failed.connect(lambda path, message: finish({"error": message, "model": path}, 1))
    return outcome


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
    outcome = exit_when_ready(app, window) if args.exit_when_ready else None
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
