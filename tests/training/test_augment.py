"""The augmentation definition: presets, YAML files, and the preview grid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training import cli
from training.augment import PRESETS, AugmentSpec, resolve_augment
from training.augment_preview import augmented_variants


def _scene() -> np.ndarray:
    image = np.full((96, 96, 3), 230, np.uint8)
    cv2.rectangle(image, (20, 15), (50, 80), (200, 60, 30), -1)
    cv2.circle(image, (72, 40), 14, (30, 60, 200), -1)
    return image


def test_seed_preset_is_the_course_notes_image_data_generator():
    seed = PRESETS["seed"]
    assert (seed.rotation_degrees, seed.width_shift, seed.height_shift, seed.shear, seed.zoom) == (
        50,
        0.2,
        0.2,
        0.2,
        0.3,
    )
    assert seed.horizontal_flip and seed.fill_mode == "nearest"
    assert PRESETS["none"].is_identity and not PRESETS["light"].horizontal_flip


def test_yaml_file_round_trip(tmp_path):
    path = tmp_path / "aug.yaml"
    path.write_text("rotation_degrees: 15\nvertical_flip: true\nfill_mode: reflect\nbrightness: 0.1\n")
    spec = resolve_augment(str(path))
    assert spec == AugmentSpec(rotation_degrees=15, vertical_flip=True, fill_mode="reflect", brightness=0.1)
    assert AugmentSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "text, message",
    [
        ("rotation: 10\n", "unknown augmentation setting"),
        ("fill_mode: smear\n", "fill_mode"),
        ("zoom: 1.5\n", "zoom"),
    ],
)
def test_bad_yaml_is_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "aug.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        resolve_augment(str(path))


def test_unknown_preset_name():
    with pytest.raises(ValueError, match="none, light, seed"):
        resolve_augment("heavy")


def test_variants_differ_from_the_original_and_each_other():
    image = _scene()
    variants = augmented_variants(image, PRESETS["seed"], 6, seed=3)
    assert len(variants) == 6 and all(v.shape == image.shape and v.dtype == np.uint8 for v in variants)
    assert all(np.abs(v.astype(int) - image).mean() > 2 for v in variants)
    assert np.abs(variants[0].astype(int) - variants[1]).mean() > 2
    assert all(np.array_equal(v, image) for v in augmented_variants(image, PRESETS["none"], 3, seed=3))


def test_augment_preview_command_writes_a_grid(tmp_path):
    source = tmp_path / "scene.png"
    cv2.imwrite(str(source), _scene())
    out = tmp_path / "grid.png"
    assert (
        cli.main(
            ["augment-preview", str(source), "--augment", "light", "--out", str(out), "--count", "8", "--size", "64"]
        )
        == 0
    )
    grid = cv2.imread(str(out))
    assert grid.shape == (3 * 70 + 6, 3 * 70 + 6, 3)  # 9 tiles of 64 px with 6 px gaps
    assert cli.main(["augment-preview", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
