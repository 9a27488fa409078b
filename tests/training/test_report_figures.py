"""What the report's figures say: file names on the misclassified sheet, loss and accuracy
axes without an offset (a flat line drawn flat), and the chance level drawn in."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training import reports


@pytest.fixture
def figures(monkeypatch):
    """The figures the report functions draw, by destination file name (still saved)."""
    drawn: dict[str, object] = {}
    real = reports.save_figure

    def keep(figure, destination):
        drawn[Path(destination).name] = figure
        return real(figure, destination)

    monkeypatch.setattr(reports, "save_figure", keep)
    return drawn


def test_misclassified_sheet_names_each_file_under_its_tile(tmp_path, figures):
    names = ["cat.17.jpg", "IMG_20240413_101502_HDR_portrait_final_version.jpeg", "b.png"]
    mistakes = []
    for index, name in enumerate(names):
        path = tmp_path / "photos" / name
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.full((40, 30, 3), 60 * index, np.uint8))
        mistakes.append({"path": str(path), "true": "cat", "predicted": "dog", "confidence": 0.9 - index / 10})
    reports.plot_misclassified(tmp_path / "sheet.png", mistakes, total_images=10)
    tiles = [axes for axes in figures["sheet.png"].axes if axes.get_images()]
    assert len(tiles) == 3  # in order of confidence, as given
    for axes, name in zip(tiles, names):
        label = axes.get_xlabel()
        assert label, "no file name under the tile"
        assert label == reports.short_file_name(name)
        assert len(label) <= 24 and label.endswith(Path(name).suffix) and name.startswith(label.split("…")[0])
        assert "cat" in axes.get_title() and "dog" in axes.get_title()
    assert "…" in tiles[1].get_xlabel()  # the long name, cut in the middle
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None


def _flat_history(path: Path) -> Path:
    """A run that learned nothing: loss at ln 3 give or take float noise, accuracy 1/3."""
    rows = ["epoch,stage,accuracy,loss,val_accuracy,val_loss"]
    for epoch, noise in enumerate([3e-6, -2e-6, 5e-6, 1e-6, -4e-6], start=1):
        rows.append(f"{epoch},1,0.3333,{1.0986123 + noise},0.3333,{1.0986123 - noise}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_flat_loss_is_drawn_flat_without_an_axis_offset(tmp_path, figures):
    reports.write_training_curves(_flat_history(tmp_path / "history.csv"), tmp_path)
    for name in (reports.CURVES_LOSS, reports.CURVES_ACCURACY):
        (axes,) = figures[name].axes
        figures[name].canvas.draw()
        assert axes.yaxis.get_major_formatter().get_offset() == "", name
        low, high = axes.get_ylim()
        values = np.concatenate([line.get_ydata() for line in axes.get_lines()])
        assert high - low >= 0.04 * np.abs(values).max(), f"{name}: a flat line zoomed up into a slope"


def test_chance_levels_are_drawn_on_the_curves(tmp_path, figures):
    reports.write_training_curves(
        _flat_history(tmp_path / "history.csv"), tmp_path, chance_levels={"accuracy": 1 / 3, "loss": np.log(3)}
    )
    for name, level in ((reports.CURVES_LOSS, np.log(3)), (reports.CURVES_ACCURACY, 1 / 3)):
        (axes,) = figures[name].axes
        labels = axes.get_legend_handles_labels()[1]
        assert f"chance ({level:.3f})" in labels, labels
