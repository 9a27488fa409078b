"""The Classify tab's panels: a saved layout can never hide the image list for good.

A window closed with no image open used to save "splitter_sizes": [0, 836, 340] (the
hidden list reports 0), and every later start opened several images with no list.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from desktop.core.settings import MAX_LAYOUT_WIDTH, Settings, usable_panel_sizes
from desktop.qt.main_window import MainWindow

MINIMUMS = [160, 120, 300]


def _window(qtbot) -> MainWindow:
    win = MainWindow(provider="cpu")
    win.errors = []
    win.show_error = lambda title, text: win.errors.append((title, text))
    qtbot.addWidget(win)
    win.show()
    return win


def _images(write_png, count: int) -> list[Path]:
    return [write_png(f"img{i}.png", np.full((20, 20, 3), (40 * i, 90, 200), np.uint8)) for i in range(count)]


@pytest.mark.parametrize(
    "saved",
    [[0, 836, 340], [1, 10**6, 1], [3000, 3000, MAX_LAYOUT_WIDTH], [100, 600, 300], [190, 650], [True, 650, 340]],
)
def test_unusable_layouts_are_refused(saved: list) -> None:
    assert not usable_panel_sizes(saved, MINIMUMS)


def test_a_layout_a_user_can_make_is_kept() -> None:
    assert usable_panel_sizes([160, 120, 300], MINIMUMS) and usable_panel_sizes([400, 2500, 900], MINIMUMS)


@pytest.mark.parametrize("saved", [[0, 836, 340], [1, 10**6, 1]])
def test_bad_saved_layout_still_shows_the_list_for_several_images(
    qtbot, isolated_config: Path, write_png, saved: list[int]
) -> None:
    (isolated_config / "settings.json").write_text(json.dumps({"splitter_sizes": saved}))
    win = _window(qtbot)
    win.open_images(_images(write_png, 3))
    qtbot.waitUntil(
        lambda: (
            win.classify_view.image_list.isVisible()
            and win.classify_view.image_list.width() >= win.classify_view.image_list.minimumWidth()
        )
    )
    sizes = win.classify_view.splitter.sizes()
    assert all(size >= 100 for size in sizes), sizes
    assert win.classify_view.image_list.count() == 3
    win.close()


def test_closing_with_no_image_saves_a_layout_that_shows_the_list(qtbot, isolated_config: Path, write_png) -> None:
    first = _window(qtbot)
    assert first.classify_view.image_list.isHidden()
    first.close()
    saved = Settings.load().get("splitter_sizes")
    assert saved[0] >= first.classify_view.image_list.minimumWidth(), saved

    second = _window(qtbot)
    second.open_images(_images(write_png, 2))
    qtbot.waitUntil(lambda: second.classify_view.image_list.isVisible())
    qtbot.waitUntil(lambda: second.classify_view.splitter.sizes()[0] >= second.classify_view.image_list.minimumWidth())
    second.close()


def test_panels_cannot_be_collapsed_by_dragging(qtbot, write_png) -> None:
    win = _window(qtbot)
    win.open_images(_images(write_png, 2))
    splitter = win.classify_view.splitter
    qtbot.waitUntil(lambda: win.classify_view.image_list.isVisible())
    splitter.moveSplitter(0, 1)  # the list's handle dragged to the window's edge
    splitter.moveSplitter(splitter.width(), 2)  # the side panel's handle to the other edge
    assert splitter.sizes()[0] >= win.classify_view.image_list.minimumWidth() and splitter.sizes()[2] >= 300
    win.close()


def test_the_list_width_a_user_chose_survives_a_restart_without_images(qtbot, write_png) -> None:
    first = _window(qtbot)
    first.open_images(_images(write_png, 2))
    qtbot.waitUntil(lambda: first.classify_view.image_list.isVisible())
    splitter = first.classify_view.splitter
    splitter.moveSplitter(260, 1)  # what dragging the handle does
    qtbot.waitUntil(lambda: splitter.sizes()[0] == 260)
    first.close()

    second = _window(qtbot)  # no images: the list stays hidden but keeps its width
    second.close()
    assert Settings.load().get("splitter_sizes")[0] == 260
