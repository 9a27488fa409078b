"""Drive the real Train tab on an X display with the real convnet-train and screenshot each state.

Run by tests/desktop/qt/test_xvfb_train.py under Xvfb (QT_QPA_PLATFORM=xcb):
    python tests/desktop/qt/xvfb_train.py OUT_DIR WORK_DIR
Writes OUT_DIR/train-<state>.png (dataset, running, results, mistakes, label) with
`import -window root` and prints one line per screenshot, or "error: ..." lines. The
content is real: a shapes dataset with a planted unreadable file and a label conflict,
a LeNet-5 run of `python -m training.cli` from this interpreter, its report, its fp32
export (whose activation maps the mistakes gallery draws), and new pictures labelled
with that export.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(REPO), str(Path(__file__).parent)]

from PySide6.QtWidgets import QApplication
from shapes_dataset import write_shapes, write_unlabelled
from xvfb_views import settle, shoot, wait_until

from desktop.core.trainer_launcher import Launcher
from desktop.qt import train_view
from desktop.qt.main_window import MainWindow
from desktop.qt.theme import install_theme
from desktop.qt.train_view import TrainView

RUN_S = 240.0


def main() -> int:
    out, work = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    data = write_shapes(work / "shapes", per_class=24)
    unlabelled = write_unlabelled(work / "new-pictures")
    launcher = Launcher((sys.executable, "-m", "training.cli"), f"this Python ({sys.executable})", "this-python")
    train_view.find_launcher = lambda: launcher
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ConvNet Studio")
    install_theme(app)
    window = MainWindow(provider="cpu")
    window.show_error = lambda title, text: print(f"error: {title}: {text}", flush=True)
    window.setGeometry(0, 0, 1280, 800)
    window.show()
    view = window.view(TrainView)
    view.ask_stop_and_close = lambda: True
    window.show_tab(view)

    view.dataset_panel.set_dataset(data)
    if not wait_until(lambda: "lenet5" in view.settings_panel.backbones and view.dataset_panel.current_scan(), 90):
        print("error: the networks or the dataset scan did not arrive", flush=True)
        return 1
    view.settings_panel.select_backbone("lenet5")
    view.settings_panel.set_advanced({"epochs": 12, "batch_size": 4, "seed": 1})
    shoot(out, "train-dataset")

    view.run_panel.start_button.click()
    if not wait_until(lambda: view.progress is not None and len(view.progress.epochs) >= 3, RUN_S):
        print(f"error: no epochs arrived: {view.progress and view.progress.stderr_tail}", flush=True)
        return 1
    shoot(out, "train-running")
    if not wait_until(lambda: view.process is None, RUN_S) or view.progress.state != "done":
        print(f"error: the run did not finish: {view.progress.error} {view.progress.stderr_tail}", flush=True)
        return 1

    panel = view.run_panel.results_panel
    box = panel.export_box
    if not wait_until(lambda: panel.results is not None, 30):
        print("error: no results shown after the run", flush=True)
        return 1
    box.choose_path = lambda default: str(default)
    box.export_button.click()
    if not wait_until(lambda: box.process is None and box.model_path is not None, RUN_S):
        print(f"error: the export failed: {box.status.text()}", flush=True)
        return 1
    view.run_panel.views.setCurrentWidget(panel)
    panel.tabs.setCurrentIndex(0)
    settle(1.0)
    shoot(out, "train-results")
    panel.show_misclassified()
    panel.tabs.setCurrentWidget(panel.gallery)
    wait_until(lambda: panel.gallery.list.count() == 0 or panel.gallery.maps_drawn > 0, 30)
    shoot(out, "train-mistakes")

    window.open_model(box.model_path)
    wait_until(lambda: window.controller.model is not None and window.controller.model.info.path == box.model_path)
    window.show_tab(view)
    dialog = view.grow_buttons.open_label_dialog()
    dialog.setGeometry(180, 80, 900, 640)
    dialog.set_folder(unlabelled)
    if not wait_until(lambda: dialog.session is not None, 60):
        print("error: the label dialog classified nothing", flush=True)
        return 1
    shoot(out, "train-label")
    dialog.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
