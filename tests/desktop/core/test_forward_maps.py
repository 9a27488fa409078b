"""Forward-pass activation maps (desktop/core/forward_maps.py) and their cache (map_cache.py).

The model here is built so the truth is known: its class-0 score is the contrast of the
top-left quadrant only, so a correct map ranks that quadrant highest and every other
pixel (which cannot change the answer) lower.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from desktop.core import forward_maps
from desktop.core.forward_maps import (
    BLUR,
    DEFAULT_METHOD,
    GREY,
    OCCLUSION,
    RISE,
    MapCancelled,
    MapMethod,
    caption,
    checked_batch_size,
    compute_map,
)
from desktop.core.map_cache import MapCache, MapKey, image_identity, model_identity

SIZE = 32


def quadrant_model(size: int = SIZE) -> onnx.ModelProto:
    """Two classes; class 0's logit is the mean |pixel - 128| of the top-left quadrant (its contrast).

    Contrast, not brightness: both baselines (blur, grey) remove it, so removing any
    top-left pixel lowers class 0 and removing any other pixel changes nothing.
    """
    half = size // 2
    constants = {
        "starts": np.array([0, 0], np.int64),
        "ends": np.array([half, half], np.int64),
        "axes": np.array([1, 2], np.int64),
        "mid": np.array(128.0, np.float32),
        "gain": np.array(1 / 16, np.float32),
        "bias": np.array(-4.0, np.float32),
        "zero": np.zeros((1, 1), np.float32),
    }
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["pixels", "starts", "ends", "axes"], ["corner"]),
        helper.make_node("Sub", ["corner", "mid"], ["centred"]),
        helper.make_node("Abs", ["centred"], ["contrast"]),
        helper.make_node("ReduceMean", ["contrast"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["mean"], ["mean_2d"], axis=1),
        helper.make_node("Mul", ["mean_2d", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["logit"]),
        helper.make_node("Mul", ["logit", "zero"], ["zeros"]),
        helper.make_node("Concat", ["logit", "zeros"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "quadrant_model",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class CountingRun:
    """The model as compute_map sees it, counting calls and images."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.calls = 0
        self.images = 0
        self.largest = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.images += len(batch)
        self.largest = max(self.largest, len(batch))
        return self.session.run(["probabilities"], {"image": batch})[0]


@pytest.fixture(scope="module")
def quadrant_session() -> ort.InferenceSession:
    return ort.InferenceSession(quadrant_model().SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def textured_image() -> np.ndarray:
    """Black and white 2-pixel checks everywhere: every quadrant has the same high contrast."""
    rng = np.random.default_rng(3)
    checks = (rng.random((SIZE // 2, SIZE // 2)) < 0.5).astype(np.uint8) * 255
    grey = np.kron(checks, np.ones((2, 2), np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation with average ranks for ties (the true region is two-valued)."""

    def ranks(values: np.ndarray) -> np.ndarray:
        flat = values.ravel()
        order = np.argsort(flat, kind="stable")
        ranked = np.empty(len(flat), np.float64)
        ranked[order] = np.arange(len(flat), dtype=np.float64)
        for value in np.unique(flat):  # ties share their mean rank
            tied = flat == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def true_region() -> np.ndarray:
    region = np.zeros((SIZE, SIZE), np.float32)
    region[: SIZE // 2, : SIZE // 2] = 1.0
    return region


# The best rank correlation any map can reach with a two-valued region covering a quarter
# of the pixels: every inside pixel ranked above every outside one (sqrt(3 q (1 - q))).
BEST_POSSIBLE = float(np.sqrt(3 * 0.25 * 0.75))


@pytest.mark.parametrize(
    "method",
    [
        DEFAULT_METHOD,
        MapMethod(RISE, masks=400, baseline=BLUR),
        MapMethod(OCCLUSION, baseline=BLUR),
        MapMethod(RISE, masks=400, baseline=GREY),
    ],
    ids=["default", "rise-blur", "occlusion-blur", "rise-grey"],
)
def test_map_ranks_the_region_that_drives_the_class_highest(quadrant_session, textured_image, method) -> None:
    run = CountingRun(quadrant_session)
    saliency = compute_map(run, textured_image, 0, method, batch_size=16)
    assert saliency.shape == (SIZE, SIZE) and saliency.dtype == np.float32
    peak_row, peak_col = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    assert peak_row < SIZE // 2 and peak_col < SIZE // 2, f"peak at {(peak_row, peak_col)}"
    correlation = spearman(saliency, true_region())
    assert correlation > 0.8 * BEST_POSSIBLE, f"rank correlation {correlation:.3f} (best possible {BEST_POSSIBLE:.3f})"
    inside, outside = saliency[true_region() > 0], saliency[true_region() == 0]
    assert inside.mean() > outside.mean() + 3 * outside.std()
    assert run.images == method.passes((SIZE, SIZE)) and run.largest <= 16


def test_the_other_class_gets_the_opposite_map(quadrant_session, textured_image) -> None:
    """Class 1 rises when the corner's contrast goes: its map must be lowest there, not copied from class 0."""
    saliency = compute_map(CountingRun(quadrant_session), textured_image, 1, MapMethod(OCCLUSION), batch_size=8)
    assert saliency[true_region() > 0].mean() < saliency[true_region() == 0].mean()


def test_passes_are_fixed_by_the_settings_and_batches_respect_the_size(quadrant_session, textured_image) -> None:
    method = MapMethod(RISE, masks=37)
    run = CountingRun(quadrant_session)
    progress: list[tuple[int, int]] = []
    compute_map(
        run, textured_image, 0, method, batch_size=8, progress=lambda done, total: progress.append((done, total))
    )
    assert run.images == 37 and run.calls == 5 and run.largest == 8
    assert progress == [(8, 37), (16, 37), (24, 37), (32, 37), (37, 37)]
    occlusion = MapMethod(OCCLUSION, patch_fraction=0.25, stride_fraction=0.125)
    assert occlusion.passes((SIZE, SIZE)) == 7 * 7  # patch 8, stride 4: starts 0, 4, …, 24
    assert "500 forward passes (RISE) — approximate" in caption(MapMethod(RISE), (SIZE, SIZE))
    assert DEFAULT_METHOD.name == OCCLUSION and DEFAULT_METHOD.baseline == GREY  # what the study chose
    assert "49 forward passes (occlusion) — approximate" in caption(DEFAULT_METHOD, (SIZE, SIZE))


def test_same_settings_give_the_same_map(quadrant_session, textured_image) -> None:
    first = compute_map(CountingRun(quadrant_session), textured_image, 0, MapMethod(RISE, masks=64), batch_size=32)
    second = compute_map(CountingRun(quadrant_session), textured_image, 0, MapMethod(RISE, masks=64), batch_size=7)
    np.testing.assert_allclose(first, second, atol=1e-5)
    other_seed = compute_map(CountingRun(quadrant_session), textured_image, 0, MapMethod(RISE, masks=64, seed=1))
    assert not np.allclose(first, other_seed)


def test_cancel_stops_before_the_next_batch(quadrant_session, textured_image) -> None:
    cancel = threading.Event()
    run = CountingRun(quadrant_session)

    def cancel_after_two(done: int, _total: int) -> None:
        if done >= 16:
            cancel.set()

    with pytest.raises(MapCancelled):
        compute_map(run, textured_image, 0, MapMethod(RISE, masks=500), 8, cancel=cancel, progress=cancel_after_two)
    assert run.calls == 2


@pytest.mark.parametrize(
    "settings",
    [{"name": "gradcam"}, {"baseline": "black"}, {"masks": 0}, {"keep_probability": 1.0}, {"patch_fraction": 0.0}],
)
def test_bad_settings_are_refused_with_a_message(settings) -> None:
    with pytest.raises(ValueError, match="."):
        MapMethod(**settings)


def test_bad_image_is_refused(quadrant_session) -> None:
    with pytest.raises(ValueError, match="uint8"):
        compute_map(CountingRun(quadrant_session), np.zeros((SIZE, SIZE, 3), np.float32), 0)


def test_batch_size_comes_from_the_probe_verdict(monkeypatch, tmp_path: Path) -> None:
    verdicts = iter(
        [
            {"bounded": True, "batch_sizes": [1, 2], "throughput_batch": 16},
            {"bounded": True, "batch_sizes": [1, 2, 48], "throughput_batch": 64},
            {"bounded": True, "batch_sizes": [1, 2]},
        ]
    )
    monkeypatch.setattr(forward_maps, "probe_model", lambda _path: next(verdicts))
    assert checked_batch_size(tmp_path / "m.onnx", None, 32) == 16  # never beyond what was run
    assert checked_batch_size(tmp_path / "m.onnx", None, 32) == 32  # a power of two the measurement ran
    assert checked_batch_size(tmp_path / "m.onnx", None, 32) == 2  # nothing measured: what every load runs
    assert checked_batch_size(tmp_path / "m.onnx", 1, 32) == 1  # a fixed batch is the model's own

    def refuse(_path):
        raise OSError("gone")

    monkeypatch.setattr(forward_maps, "probe_model", refuse)
    assert checked_batch_size(tmp_path / "m.onnx", None, 32) == 2


def test_cache_is_bounded_least_recently_used_and_read_only(tmp_path: Path) -> None:
    cache = MapCache(capacity=3)
    keys = [MapKey("m", f"img{i}", 0, ("rise",)) for i in range(4)]
    for i, key in enumerate(keys[:3]):
        cache.put(key, np.full((2, 2), i, np.float32))
    assert cache.get(keys[0]) is not None  # now the most recent
    cache.put(keys[3], np.ones((2, 2), np.float32))
    assert len(cache) == 3 and cache.get(keys[1]) is None and cache.get(keys[0]) is not None
    stored = cache.get(keys[3])
    with pytest.raises(ValueError):
        stored[0, 0] = 5.0
    with pytest.raises(ValueError):
        MapCache(capacity=0)


def test_identities_follow_pixels_and_file_contents(tmp_path: Path) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    changed = image.copy()
    changed[0, 0, 0] = 1
    assert image_identity(image) == image_identity(image.copy()) != image_identity(changed)
    assert image_identity(image) != image_identity(np.zeros((2, 8, 3), np.uint8))
    path = tmp_path / "model.onnx"
    path.write_bytes(b"one")
    before = model_identity(path)
    path.write_bytes(b"other bytes")
    assert model_identity(path) != before
    assert model_identity(path, "ab" * 32) == "sha256:" + "ab" * 32
