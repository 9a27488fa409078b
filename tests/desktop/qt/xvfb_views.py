"""Drive the real main window on an X display and screenshot every view.

Run by tests/desktop/qt/test_xvfb_views.py under Xvfb (QT_QPA_PLATFORM=xcb):
    python tests/desktop/qt/xvfb_views.py OUT_DIR WORK_DIR
Writes OUT_DIR/view-<name>.png with `import -window root`, one per tab, and prints
one line per screenshot. The content is real: the bundled digits model, digits drawn
the way tests/training/digit_drawings.py draws them, a generated video. The Classify
shot is the README's hero picture: it shows what the app shows after opening an image,
the top class's activation map (checked, not assumed: a wrong map is an "error:" line).
The Batch folder is labelled (sub-folders named after the digits), so its shot shows
the accuracy panel too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "training")]

import cv2
import numpy as np

from desktop.qt.augment_view import AugmentView
from desktop.qt.batch_view import BatchView
from desktop.qt.camera_view import CameraView
from desktop.qt.compare_view import CompareView
from desktop.qt.environment import scrub_opencv_qt_env

scrub_opencv_qt_env()

from digit_drawings import draw_test_digit
from PySide6.QtWidgets import QApplication

from desktop.qt.main_window import MainWindow
from desktop.qt.theme import install_theme

MODEL = REPO / "exported_models" / "digits-lenet5.onnx"


def wait_until(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def settle(seconds: float) -> None:
    wait_until(lambda: False, seconds)


def shoot(out: Path, name: str) -> None:
    settle(0.8)
    target = out / f"view-{name}.png"
    subprocess.run(["import", "-window", "root", str(target)], check=True, timeout=30)
    print(f"screenshot {target}", flush=True)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def cat_photo(work: Path) -> Path:
    """scikit-image's `chelsea` (a cat), copied so the list shows a plain name."""
    import skimage.data

    target = work / "cat.png"
    shutil.copyfile(Path(skimage.data.__file__).parent / "chelsea.png", target)
    return target


def make_content(work: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(4)
    digit = write_rgb(work / "digit-7.jpg", cv2.resize(draw_test_digit(7, "font0", True, rng), (480, 360)))
    folder = work / "scans"
    for index in range(24):
        style = ("font0", "font1", "font2", "pen")[index % 4]
        write_rgb(
            folder / str(index % 10) / f"digit-{index:02d}.jpg",
            draw_test_digit(index % 10, style, bool(index % 3), rng),
        )
    (folder / "0" / "notes.jpg").write_text("not an image")
    video = work / "digits.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
    for frame in range(90):
        image = np.full((240, 320, 3), 235, np.uint8)
        x = 60 + int(80 * np.sin(frame / 12))
        cv2.putText(image, str(3 + frame // 45), (x, 190), cv2.FONT_HERSHEY_DUPLEX, 6, (30, 30, 30), 14, cv2.LINE_AA)
        writer.write(image)
    writer.release()
    return digit, folder, video


def main() -> int:
    out, work = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    digit, folder, video = make_content(work)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ConvNet Studio")
    install_theme(app)  # as desktop/app.py does, so the shots look like the app people run
    window = MainWindow(provider="cpu")
    window.show_error = lambda title, text: print(f"error: {title}: {text}", flush=True)
    window.setGeometry(0, 0, 1280, 800)
    window.show()
    window.open_model(MODEL)
    if not wait_until(lambda: window.controller.model is not None):
        print("error: the model did not load", flush=True)
        return 1

    window.open_images([digit])
    wait_until(lambda: bool(window.classify_view.predictions.displayed()))
    shown = window.classify_view.current
    if shown is None or window.classify_view.viewer.class_index != shown.top_index:
        print(f"error: the map shown is class {window.classify_view.viewer.class_index}, not the top class", flush=True)
    shoot(out, "classify")

    # A photo of a cat, the issue's own example: the digits model must call it Unknown.
    window.open_images([cat_photo(work)])
    wait_until(lambda: getattr(getattr(window.classify_view.current, "path", None), "name", "") == "cat.png")
    wait_until(lambda: bool(window.classify_view.predictions.displayed()))
    shown = window.classify_view.current
    if shown is None or shown.unknown is not True:
        print(f"error: the cat photo was not called unknown: {shown}", flush=True)
    shoot(out, "unknown")

    window.view(BatchView).ask_resume = lambda *args, **kwargs: "restart"
    window.show_tab(window.view(BatchView))
    window.view(BatchView).start_folder(folder)
    wait_until(lambda: not window.view(BatchView).running and len(window.view(BatchView).results()) == 25)
    if window.view(BatchView).accuracy.tally is None:
        print("error: the labelled scans folder shows no accuracy", flush=True)
    shoot(out, "batch")

    window.tabs.setCurrentWidget(window.view(CameraView))
    window.view(CameraView).start_source(str(video))
    settle(2.5)
    shoot(out, "camera")
    window.view(CameraView).stop()

    window.tabs.setCurrentWidget(window.view(AugmentView))
    window.view(AugmentView).load_image(digit)
    wait_until(lambda: len(window.view(AugmentView).tiles()) > 0)
    shoot(out, "augment")

    second = work / "digits-lenet5-copy.onnx"
    shutil.copy(MODEL, second)
    window.tabs.setCurrentWidget(window.view(CompareView))
    window.view(CompareView).load_second_model(second)
    settle(3.0)
    shoot(out, "compare")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
