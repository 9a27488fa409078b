"""The OpenCV augmentation preview against the Keras layers training uses, draw for draw.

Each test feeds ONE fixed draw both to our composed warpAffine and to the Keras layer's
`transform_images` (with a transformation dict built from the same draw), then compares
pixels on a smooth image and the position of a bright blob.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from desktop.core import augmentation as aug
from desktop.core.augmentation import AugmentParams, Draw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
H, W = 60, 80  # deliberately not square, so x/y mix-ups show


def smooth_image() -> np.ndarray:
    """Low-frequency colour gradients: bilinear resampling differences stay tiny on it."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    r = 40 + 170 * x / (W - 1)
    g = 40 + 170 * y / (H - 1)
    b = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 11.0)
    return np.rint(np.stack([r, g, b], axis=-1)).astype(np.uint8)


def blob_image() -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    yy, xx = np.mgrid[0:H, 0:W]
    image[(xx - 20) ** 2 + (yy - 15) ** 2 <= 16] = 255
    return image


def centroid(image: np.ndarray) -> tuple[float, float]:
    weights = image[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return float((xx * weights).sum() / weights.sum()), float((yy * weights).sum() / weights.sum())


def ours(image: np.ndarray, draw: Draw, params: AugmentParams) -> np.ndarray:
    return aug.apply_draw(image, draw, params).astype(np.float32)


@pytest.fixture(scope="module")
def keras_layers():
    keras = pytest.importorskip("keras")
    return keras.layers


def run_keras(layer, image: np.ndarray, transformation: dict) -> np.ndarray:
    import keras

    batch = image[None].astype(np.float32)
    transformation = {"input_shape": batch.shape, **transformation}
    out = layer.transform_images(keras.ops.convert_to_tensor(batch), transformation, training=True)
    return np.clip(np.rint(keras.ops.convert_to_numpy(out)[0]), 0, 255).astype(np.float32)


def keras_geometry(layers, kind: str, draw: Draw, fill_mode: str, height: int = H, width: int = W):
    """The Keras layer for one geometric step and the transformation dict for `draw`."""
    f32 = lambda value: np.array(value, dtype=np.float32)  # noqa: E731 - a one-line helper read where it is used
    if kind == "rotation":
        layer = layers.RandomRotation(0.5, fill_mode=fill_mode)
        matrix = layer._compute_affine_matrix(
            center_x=0.5,
            center_y=0.5,
            angle=f32([draw.angle]),
            translate_x=f32([0]),
            translate_y=f32([0]),
            scale=f32([1]),
            shear_x=f32([0]),
            shear_y=f32([0]),
            height=height,
            width=width,
        )
        return layer, {"rotation_matrix": matrix}
    if kind == "translation":
        layer = layers.RandomTranslation(0.5, 0.5, fill_mode=fill_mode)
        return layer, {"translations": f32([[draw.tx * width, draw.ty * height]])}
    if kind == "shear":
        layer = layers.RandomShear(x_factor=0.5, fill_mode=fill_mode)
        return layer, {"shear_factor": f32([[draw.shear, 0.0]])}
    if kind == "zoom":
        layer = layers.RandomZoom(0.5, fill_mode=fill_mode)
        return layer, {"height_zoom": f32([[draw.zoom]]), "width_zoom": f32([[draw.zoom]])}
    raise AssertionError(kind)


GEOMETRY_CASES = [
    ("rotation", Draw(angle=23.0)),
    ("rotation", Draw(angle=-37.5)),
    ("translation", Draw(tx=0.15, ty=-0.1)),
    ("shear", Draw(shear=0.18)),
    ("shear", Draw(shear=-0.2)),
    ("zoom", Draw(zoom=1.25)),  # zoom out
    ("zoom", Draw(zoom=0.8)),  # zoom in
]


@pytest.mark.parametrize("kind, draw", GEOMETRY_CASES)
@pytest.mark.parametrize("fill_mode", aug.FILL_MODES)
def test_geometry_matches_keras_layer(keras_layers, kind: str, draw: Draw, fill_mode: str) -> None:
    params = AugmentParams(fill_mode=fill_mode)
    layer, transformation = keras_geometry(keras_layers, kind, draw, fill_mode)
    expected = run_keras(layer, smooth_image(), transformation)
    got = ours(smooth_image(), draw, params)
    diff = np.abs(expected - got)
    # Fill regions included: at most one grey level of rounding anywhere (wrap's seams too).
    assert diff.max() <= 1.0, f"{kind} {fill_mode}: max abs diff {diff.max():.0f}"
    assert diff.mean() < 0.05, f"{kind} {fill_mode}: mean abs diff {diff.mean():.3f}"


@pytest.mark.parametrize("kind, draw", GEOMETRY_CASES)
def test_blob_lands_where_keras_puts_it(keras_layers, kind: str, draw: Draw) -> None:
    layer, transformation = keras_geometry(keras_layers, kind, draw, "constant")
    expected = centroid(run_keras(layer, blob_image(), transformation))
    got = centroid(ours(blob_image(), draw, AugmentParams(fill_mode="constant")))
    assert got == pytest.approx(expected, abs=0.25)
    assert got != pytest.approx(centroid(blob_image()), abs=0.5)  # it did move


@pytest.mark.parametrize("horizontal, vertical", [(True, False), (False, True), (True, True)])
def test_flips_match_keras(keras_layers, horizontal: bool, vertical: bool) -> None:
    mode = "horizontal_and_vertical" if horizontal and vertical else ("horizontal" if horizontal else "vertical")
    layer = keras_layers.RandomFlip(mode)
    params = AugmentParams(horizontal_flip=horizontal, vertical_flip=vertical)
    for flip in (True, False):
        expected = run_keras(layer, smooth_image(), {"flips": np.full((1, 1, 1, 1), flip)})
        np.testing.assert_array_equal(ours(smooth_image(), Draw(flip=flip), params), expected)
    assert not np.array_equal(ours(smooth_image(), Draw(flip=True), params), smooth_image())


def test_composed_chain_matches_keras_sequence(keras_layers) -> None:
    """All geometric layers in training's order vs our single warp, away from the borders."""
    draw = Draw(flip=True, angle=12.0, tx=0.06, ty=-0.05, shear=0.08, zoom=0.92)
    params = AugmentParams(horizontal_flip=True, fill_mode="reflect")
    image = smooth_image()
    expected = run_keras(keras_layers.RandomFlip("horizontal"), image, {"flips": np.full((1, 1, 1, 1), True)})
    for kind in ("rotation", "translation", "shear", "zoom"):
        layer, transformation = keras_geometry(keras_layers, kind, draw, "reflect")
        expected = run_keras(layer, expected, transformation)
    got = ours(image, draw, params)
    centre = np.abs(expected - got)[H // 4 : -H // 4, W // 4 : -W // 4]
    assert centre.mean() < 2.0, centre.mean()


def test_photometric_matches_keras(keras_layers) -> None:
    image = smooth_image()
    brightness = keras_layers.RandomBrightness(0.5, value_range=(0, 255))
    contrast = keras_layers.RandomContrast(0.5)
    draw = Draw(brightness=-40.0, contrast=1.3)
    expected = run_keras(brightness, image, {"rgb_delta": np.full((1, 1, 1, 1), -40.0, np.float32)})
    expected = run_keras(contrast, expected, {"contrast_factor": np.full((1, 1, 1, 1), 1.3, np.float32)})
    assert np.abs(ours(image, draw, AugmentParams()) - expected).max() <= 1.0


def test_brightness_and_contrast_math() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = (100, 10, 250)
    image[1, 1] = (200, 30, 250)
    out = aug.adjust_photometric(image, brightness=20.0, contrast=1.0)
    np.testing.assert_allclose(out[0, 0], (120, 30, 255))  # clipped at 255
    out = aug.adjust_photometric(image, brightness=0.0, contrast=2.0)
    # per-channel means (75, 10, 125): red 100 -> 125, green 10 stays, blue 250 -> 375 -> 255
    np.testing.assert_allclose(out[0, 0], (125, 10, 255))
    np.testing.assert_allclose(out[0, 1], (0, 0, 0))


def test_draw_distributions_follow_keras_ranges() -> None:
    params = AugmentParams(
        rotation_degrees=30,
        width_shift=0.2,
        height_shift=0.1,
        shear=0.2,
        zoom=0.3,
        brightness=0.1,
        contrast=0.4,
        horizontal_flip=True,
    )
    draws = [aug.make_draw(params, row) for row in aug.random_units(np.random.default_rng(0), 2000)]
    angles = np.array([d.angle for d in draws])
    assert -30 <= angles.min() < -28 and 28 < angles.max() <= 30
    zooms = np.array([d.zoom for d in draws])
    assert 0.7 <= zooms.min() < 0.72 and 1.28 < zooms.max() <= 1.3
    contrasts = np.array([d.contrast for d in draws])
    assert contrasts.min() >= 1.0 and contrasts.max() > 1.38  # Keras only raises contrast
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    assert max(abs(d.brightness) for d in draws) <= 0.1 * 255
    assert not any(aug.make_draw(AugmentParams(), row).flip for row in aug.random_units(np.random.default_rng(1), 50))


def test_identity_params_leave_the_image_alone() -> None:
    image = smooth_image()
    units = aug.random_units(np.random.default_rng(3), 4)
    for variant in aug.variants(image, AugmentParams(), units):
        np.testing.assert_array_equal(variant, image)


def test_slider_change_morphs_instead_of_rerolling() -> None:
    units = aug.random_units(np.random.default_rng(5), 1)[0]
    small = aug.make_draw(AugmentParams(rotation_degrees=10), units)
    large = aug.make_draw(AugmentParams(rotation_degrees=20), units)
    assert large.angle == pytest.approx(2 * small.angle)


def test_preview_source_downscales_long_side() -> None:
    big = np.zeros((1200, 3000, 3), np.uint8)
    assert aug.preview_source(big).shape == (102, 256, 3)
    small = np.zeros((50, 60, 3), np.uint8)
    assert aug.preview_source(small).shape == small.shape


def test_presets_equal_training_presets() -> None:
    from training.augment import PRESETS

    assert set(aug.PRESETS) == set(PRESETS)
    for name, spec in PRESETS.items():
        assert aug.PRESETS[name].to_dict() == spec.to_dict(), name
    assert aug.FIELD_NAMES == tuple(spec.to_dict())


@pytest.mark.parametrize(
    "params",
    [
        aug.PRESETS["seed"],
        AugmentParams(rotation_degrees=12.5, contrast=0.05, vertical_flip=True, fill_mode="wrap"),
        AugmentParams(),
    ],
)
def test_yaml_export_round_trips_through_training(tmp_path, params: AugmentParams) -> None:
    from training.augment import resolve_augment

    path = tmp_path / "aug.yaml"
    path.write_text(aug.to_yaml(params), encoding="utf-8")
    assert resolve_augment(str(path)).to_dict() == params.to_dict()


def test_params_from_metadata() -> None:
    params, note = aug.params_from_metadata(aug.PRESETS["light"].to_dict())
    assert params == aug.PRESETS["light"] and note == "Model's settings."
    params, note = aug.params_from_metadata({"zoom": 0.2, "legacy": 1})
    assert params == AugmentParams(zoom=0.2) and "legacy" in note
    assert aug.params_from_metadata({"flip": False})[0] is None
    assert aug.params_from_metadata(None)[0] is None
    params, note = aug.params_from_metadata({"zoom": 3})
    assert params is None and "zoom" in note
    assert aug.preset_name(aug.PRESETS["seed"]) == "seed" and aug.preset_name(AugmentParams(zoom=0.01)) is None


def test_invalid_params_rejected() -> None:
    with pytest.raises(ValueError):
        AugmentParams(fill_mode="mirror")
    with pytest.raises(ValueError):
        AugmentParams(rotation_degrees=200)
