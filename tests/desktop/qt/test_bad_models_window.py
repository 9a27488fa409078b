"""Bad model files in the real window: one error dialog each, and the old model keeps classifying.

The bad files and the loader's answers to them are in tests/desktop/core/test_bad_models.py,
whose `bad_models` fixture is shared here.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx_factory
from test_adopt_dialog import shown_adopt_dialog
from test_bad_models import ALL_CASES, WAIT_MS, BadModel, bad_models  # noqa: F401 - bad_models is a fixture

from desktop.core.trainer_launcher import TrainerMissing
from desktop.qt import adopt_worker
from desktop.qt.main_window import ADOPTABLE_INPUT


def test_main_window_keeps_its_model_through_every_bad_file(
    qtbot, window, colour_model: Path, bad_models: dict[str, BadModel], write_png, monkeypatch
) -> None:
    """In the real window: each bad file gives one error dialog, and the old model keeps classifying.

    A file refused only for its input (float, NCHW…) is offered the Adopt dialog instead,
    with the same message as its reason (no convnet-train is looked for here).
    """
    monkeypatch.setattr(adopt_worker, "find_launcher", lambda: TrainerMissing("none in this test", None, None, None))
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(colour_model)
    loaded = window.controller.model
    offered = 0
    for number, case in enumerate(ALL_CASES, start=1):
        bad = bad_models[case]
        with qtbot.waitSignal(window.controller.model_failed, timeout=WAIT_MS):
            window.open_model(bad.path)
        dialog = shown_adopt_dialog(window)
        if dialog is not None:
            assert dialog.source == bad.path and re.search(bad.expected, dialog.reason.text()), case
            assert ADOPTABLE_INPUT in dialog.reason.text() and window.controller.model is loaded, case
            dialog.reject()
            offered += 1
            continue
        assert len(window.errors) == number - offered, case
        title, text = window.errors[-1]
        path_line, message, kept = text.split("\n\n")
        assert title == "Could not open model" and path_line == str(bad.path)
        assert re.search(bad.expected, message), message
        assert kept == "Still using colours.onnx."
        assert window.controller.model is loaded, case
        assert window.windowTitle().endswith("colours.onnx")
    assert offered >= 1  # the float-input file at least; each offer was checked above
    red = write_png("red.png", onnx_factory.mostly((220, 0, 0)))
    window.open_images([red])
    qtbot.waitUntil(
        lambda: (
            bool(window.classify_view.predictions.displayed())
            and window.classify_view.predictions.displayed()[0][0] == "red"
        ),
        timeout=WAIT_MS,
    )
