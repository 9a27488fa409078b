"""Bad model files in the real window: one error dialog each, and the old model keeps classifying.

The bad files and the loader's answers to them are in tests/desktop/core/test_bad_models.py,
whose `bad_models` fixture is shared here.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx_factory
from test_bad_models import ALL_CASES, WAIT_MS, BadModel, bad_models  # noqa: F401 - bad_models is a fixture


def test_main_window_keeps_its_model_through_every_bad_file(
    qtbot, window, colour_model: Path, bad_models: dict[str, BadModel], write_png
) -> None:
    """In the real window: each bad file gives one error dialog, and the old model keeps classifying."""
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(colour_model)
    loaded = window.controller.model
    for number, case in enumerate(ALL_CASES, start=1):
        bad = bad_models[case]
        with qtbot.waitSignal(window.controller.model_failed, timeout=WAIT_MS):
            window.open_model(bad.path)
        assert len(window.errors) == number, case
        title, text = window.errors[-1]
        path_line, message, kept = text.split("\n\n")
        assert title == "Could not open model" and path_line == str(bad.path)
        assert re.search(bad.expected, message), message
        assert kept == "Still using colours.onnx."
        assert window.controller.model is loaded, case
        assert window.windowTitle().endswith("colours.onnx")
    red = write_png("red.png", onnx_factory.mostly((220, 0, 0)))
    window.open_images([red])
    qtbot.waitUntil(
        lambda: (
            bool(window.classify_view.predictions.displayed())
            and window.classify_view.predictions.displayed()[0][0] == "red"
        ),
        timeout=WAIT_MS,
    )
