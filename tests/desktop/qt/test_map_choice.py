"""The "Map:" selector (desktop/qt/map_choice.py) switches the Classify view between the
in-graph Grad-CAM (`cam`) and the finer LayerCAM (`cam_fine`); old files without
`cam_fine` still load and show Grad-CAM; the choice is remembered in the settings.

The model is the colour model of onnx_factory with a `cam_fine` output added: the same
colour mapping on 2x2 blocks (an 8x8 grid) where `cam` uses 4x4 blocks, so the map the
window draws can be recomputed here in numpy and compared, not just checked for being there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_factory
import pytest
from onnx import TensorProto, helper, numpy_helper

from desktop.core.classifier import Classifier
from desktop.core.model import ModelLoadError, load_model
from desktop.core.settings import Settings
from desktop.qt.main_window import MainWindow
from desktop.qt.map_choice import FORWARD, GRADCAM, LAYERCAM

WAIT_MS = 20_000
SIZE = 16
FINE_GRID = 8
FINE_LAYER = "block_mean_fine"


def with_fine_map(model: onnx.ModelProto, classes: int | None = None) -> onnx.ModelProto:
    """Add `cam_fine`: ReLU(2x2-block means @ weights), [N, 8, 8, classes] (or a wrong class count)."""
    graph = model.graph
    block = SIZE // FINE_GRID
    shape = np.array([-1, FINE_GRID, block, FINE_GRID, block, 3], dtype=np.int64)
    graph.initializer.append(numpy_helper.from_array(shape, "fine_block_shape"))
    weights = "weights"
    if classes is not None:
        graph.initializer.append(numpy_helper.from_array(np.ones((3, classes), np.float32), "wrong_weights"))
        weights = "wrong_weights"
    graph.node.extend(
        [
            helper.make_node("Reshape", ["pixels", "fine_block_shape"], ["fine_blocks"]),
            helper.make_node("ReduceMean", ["fine_blocks"], ["fine_means"], axes=[2, 4], keepdims=0),
            helper.make_node("MatMul", ["fine_means", weights], ["fine_logits"]),
            helper.make_node("Relu", ["fine_logits"], ["cam_fine"]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info("cam_fine", TensorProto.FLOAT, ["N", FINE_GRID, FINE_GRID, 3]))
    for key, value in (("cam_fine_layer", FINE_LAYER), ("cam_fine_method", "layercam")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def fine_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("map-choice") / "colours-fine.onnx"
    onnx.save(with_fine_map(onnx_factory.build_model(size=SIZE)), str(path))
    return path


@pytest.fixture(scope="module")
def old_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file exported before cam_fine existed: cam only."""
    return onnx_factory.save_model(tmp_path_factory.mktemp("map-choice") / "colours-old.onnx", size=SIZE)


def red_corner() -> np.ndarray:
    """Dark, with a red 6x6 square in the top-left corner: the red map must light up there only."""
    image = np.full((SIZE, SIZE, 3), 20, dtype=np.uint8)
    image[:6, :6] = (230, 10, 10)
    return image


def expected_fine_map(model_input: np.ndarray, class_index: int) -> np.ndarray:
    """What cam_fine computes, in numpy: ReLU of the 2x2 block means through the model's weights."""
    weights = np.eye(3, 3, dtype=np.float32) * 0.05  # onnx_factory's default
    block = SIZE // FINE_GRID
    means = model_input.astype(np.float32).reshape(FINE_GRID, block, FINE_GRID, block, 3).mean(axis=(1, 3))
    return np.maximum(means @ weights, 0.0)[..., class_index]


def _load(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.controller.model_changed, timeout=WAIT_MS):
        window.open_model(path)


def _show(qtbot, window: MainWindow, write_png) -> None:
    window.open_images([write_png("red-corner.png", red_corner())])
    qtbot.waitUntil(lambda: window.classify_view.current is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.classify_view.viewer.current_cam() is not None, timeout=WAIT_MS)


def test_selector_switches_between_gradcam_and_the_finer_layercam(qtbot, window, fine_file, write_png) -> None:
    _load(qtbot, window, fine_file)
    _show(qtbot, window, write_png)
    view = window.classify_view
    viewer, choice = view.viewer, view.map_choice
    assert [choice.combo.itemData(i) for i in range(choice.combo.count())] == [GRADCAM, LAYERCAM]
    assert choice.isVisibleTo(window) and choice.combo.isEnabled()
    assert FINE_LAYER in choice.combo.itemText(1)
    assert viewer.current_cam().shape == (4, 4) and "Grad-CAM" in viewer.cam_caption.text()

    choice.select(LAYERCAM)
    fine = viewer.current_cam()
    assert fine.shape == (FINE_GRID, FINE_GRID)
    assert f"LayerCAM, layer {FINE_LAYER}" in viewer.cam_caption.text() and "red" in viewer.cam_caption.text()
    model_input = Classifier(window.controller.model).preprocess([view.current.image])[0]
    np.testing.assert_allclose(fine, expected_fine_map(model_input, viewer.class_index), rtol=1e-5, atol=1e-5)
    assert fine[:2, :2].min() > fine[4:, 4:].max(), "the red map must light up the red corner"

    choice.select(GRADCAM)
    assert viewer.current_cam().shape == (4, 4) and "Grad-CAM" in viewer.cam_caption.text()


def test_choice_is_remembered_and_an_old_file_shows_gradcam(qtbot, window, fine_file, old_file, write_png) -> None:
    _load(qtbot, window, fine_file)
    view = window.classify_view
    view.map_choice.select(LAYERCAM)
    settings = Settings()
    view.save_settings(settings)
    assert settings.get("map_choice") == LAYERCAM

    _load(qtbot, window, old_file)
    _show(qtbot, window, write_png)
    choice = view.map_choice
    assert [choice.combo.itemData(i) for i in range(choice.combo.count())] == [GRADCAM]
    assert not choice.combo.isEnabled()
    assert view.viewer.current_cam().shape == (4, 4) and "Grad-CAM" in view.viewer.cam_caption.text()
    assert choice.preferred == LAYERCAM, "a model without the finer map must not forget the user's choice"

    view.map_choice.set_preferred(GRADCAM)
    view.restore_settings(settings)
    _load(qtbot, window, fine_file)
    _show(qtbot, window, write_png)
    assert choice.current == LAYERCAM and view.viewer.current_cam().shape == (FINE_GRID, FINE_GRID)


def test_a_model_without_cam_offers_the_forward_pass_map(qtbot, window, tmp_path) -> None:
    path = onnx_factory.save_model(tmp_path / "no-cam.onnx", size=SIZE, with_cam=False)
    _load(qtbot, window, path)
    choice = window.classify_view.map_choice
    choice.refresh()
    assert [choice.combo.itemData(i) for i in range(choice.combo.count())] == [FORWARD]
    assert "forward passes" in choice.combo.itemText(0) and not choice.combo.isEnabled()


def test_loaded_model_reads_the_fine_map_and_refuses_a_malformed_one(fine_file, old_file, tmp_path) -> None:
    model = load_model(fine_file, provider="cpu")
    assert model.info.has_cam_fine and model.info.cam_fine_layer == FINE_LAYER
    assert model.info.cam_fine_method == "layercam"
    batch = np.stack([red_corner(), red_corner()[::-1]])
    fine = model.fine_maps(batch)
    assert fine.shape == (2, FINE_GRID, FINE_GRID, 3)
    np.testing.assert_allclose(fine[1, ..., 0], expected_fine_map(batch[1], 0), rtol=1e-5, atol=1e-5)

    old = load_model(old_file, provider="cpu")
    assert old.info.has_cam and not old.info.has_cam_fine and old.cam_fine_name is None
    with pytest.raises(ValueError, match="no finer activation map"):
        old.fine_maps(batch)

    broken = tmp_path / "wrong-classes.onnx"
    onnx.save(with_fine_map(onnx_factory.build_model(size=SIZE), classes=5), str(broken))
    with pytest.raises(ModelLoadError, match=r"output 'cam_fine' must be \[N, h, w, 3\]"):
        load_model(broken, provider="cpu")
