"""The `resize` metadata entry: stretch (default) or shorter-side resize and centre crop.

A crop model must answer for the centre of a wide picture on every path that fits an
image to the model (in-memory frames, file decode, the reduced JPEG decode, batch and
convnet-classify), and stretch models must see exactly what they saw before.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import onnx_factory
import pytest

from convnet_common import imaging
from convnet_common.image_headers import inspect_header
from convnet_common.imaging import decode_for_model, decode_image_rgb, fit_to_model, resize_for_model
from convnet_common.model_contract import ContractError, read_metadata
from convnet_common.resize_mode import SHORTER_SIDE_CROP, STRETCHED, ResizeMode, crop_box
from desktop.classify_cli import main as classify_main
from desktop.core.activation import overlay
from desktop.core.batch import classify_paths
from desktop.core.classifier import Classifier
from desktop.core.model import load_model

RED, GREEN, BLUE = (230, 20, 20), (20, 230, 20), (20, 20, 230)
CROP = ResizeMode(SHORTER_SIDE_CROP, 0.875)


def wide_thirds(height: int = 60) -> np.ndarray:
    """Red | green | blue, each a square: the centre is green, the whole averages to grey."""
    image = np.zeros((height, 3 * height, 3), np.uint8)
    for i, colour in enumerate((RED, GREEN, BLUE)):
        image[:, i * height : (i + 1) * height] = colour
    return image


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients and blobs with a distinct position everywhere, so a shifted crop shows."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def crop_model(tmp_path_factory) -> Path:
    metadata = onnx_factory.full_metadata(onnx_factory.COLOUR_LABELS, 16)
    metadata["resize"] = CROP.to_json()
    path = tmp_path_factory.mktemp("resize") / "crop.onnx"
    return onnx_factory.save_model(path, metadata=metadata)


@pytest.fixture(scope="module")
def crop_classifier(crop_model: Path) -> Classifier:
    return Classifier(load_model(crop_model, provider="cpu"))


@pytest.fixture(scope="module")
def stretch_classifier(colour_model: Path) -> Classifier:
    return Classifier(load_model(colour_model, provider="cpu"))


def test_crop_box_follows_the_documented_rounding() -> None:
    # 224 at 0.875: the shorter side becomes 256; a 480 x 640 photo is scaled by 256/480,
    # so the box is 224 * 480 / 256 = 420 pixels a side, centred.
    assert crop_box(480, 640, 224, 224, CROP) == (30, 110, 420, 420)
    assert crop_box(480, 640, 224, 224, STRETCHED) == (0, 0, 480, 640)
    # A fraction of 1 crops the largest centred square; a tall picture crops top and bottom.
    assert crop_box(300, 100, 50, 50, ResizeMode(SHORTER_SIDE_CROP, 1.0)) == (100, 0, 100, 100)


def test_crop_matches_resize_then_centre_crop() -> None:
    """fit_to_model against the definition done the slow way (resize the whole picture, then crop)."""
    image = photo_like(480, 640)
    resized = cv2.resize(image, (341, 256), interpolation=cv2.INTER_AREA)  # shorter side 256
    reference = resized[16 : 16 + 224, 58 : 58 + 224]
    ours = fit_to_model(image, 224, 224, CROP)
    difference = np.abs(ours.astype(int) - reference.astype(int))
    # The box edges round in source pixels (left 110 here, 108.75 in the reference): a
    # fraction of a pixel apart, a few grey levels on this busy picture.
    assert ours.shape == (224, 224, 3) and difference.mean() < 3.0
    stretched = resize_for_model(image, 224, 224)
    assert np.abs(stretched.astype(int) - reference.astype(int)).mean() > 4 * difference.mean()


def test_stretch_is_unchanged() -> None:
    image = photo_like(120, 200)
    assert np.array_equal(fit_to_model(image, 32, 32), resize_for_model(image, 32, 32))
    data = jpeg_bytes(photo_like(960, 1280))
    flag = imaging._reduction_flag(inspect_header(data), 224, 224)
    assert flag == imaging._reduction_flag(inspect_header(data), 224, 224, STRETCHED) == cv2.IMREAD_REDUCED_COLOR_4


@pytest.mark.parametrize("shape", [(960, 1280), (1000, 3000), (1600, 900)])
def test_reduced_jpeg_decode_crops_the_same_region(shape) -> None:
    data = jpeg_bytes(photo_like(*shape, seed=5))
    assert imaging._reduction_flag(inspect_header(data), 224, 224, CROP) is not None
    reduced = decode_for_model(data, 224, 224, "photo.jpg", CROP)
    full = fit_to_model(decode_image_rgb(data), 224, 224, CROP)
    difference = np.abs(reduced.astype(int) - full.astype(int))
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 8
    # A crop one reduced pixel off would show: the full decode shifted by 8 pixels is far further away.
    shifted = fit_to_model(decode_image_rgb(data)[:, 8:], 224, 224, CROP)
    assert np.abs(shifted.astype(int) - full.astype(int)).mean() > difference.mean()


def test_reduction_keeps_the_crop_box_above_the_input() -> None:
    # The short side is 4 x 224 (a quarter decode would do for stretch), but the crop box
    # is only 784 pixels: a quarter decode would leave 196 and have to enlarge it.
    data = jpeg_bytes(photo_like(896, 1200))
    assert imaging._reduction_flag(inspect_header(data), 224, 224) == cv2.IMREAD_REDUCED_COLOR_4
    assert imaging._reduction_flag(inspect_header(data), 224, 224, CROP) == cv2.IMREAD_REDUCED_COLOR_2


def test_crop_model_answers_for_the_centre(crop_classifier: Classifier, stretch_classifier: Classifier) -> None:
    image = wide_thirds()
    cropped = crop_classifier.classify_image(image)
    assert cropped.ok and cropped.top_label == "green" and cropped.top_k[0][1] > 0.9
    stretched = stretch_classifier.classify_image(image)
    assert stretched.ok and dict(stretched.top_k)["green"] < 0.5  # the whole picture averages out
    assert stretched.map_region is None
    top, left, height, width = cropped.map_region
    # 16 / 0.875 rounds to 18: the box is 16/18 of the 60-pixel height, centred in the middle third.
    assert height == pytest.approx(16 / 18, abs=0.02) and top == pytest.approx((1 - height) / 2, abs=0.01)
    assert width == pytest.approx(height / 3, abs=0.01) and left + width / 2 == pytest.approx(0.5, abs=0.01)


def test_crop_model_on_files_batch_and_cli(crop_classifier: Classifier, crop_model: Path, tmp_path: Path, capsys):
    png = tmp_path / "wide.png"
    cv2.imwrite(str(png), cv2.cvtColor(wide_thirds(), cv2.COLOR_RGB2BGR))
    big_jpeg = tmp_path / "wide.jpg"  # 600 x 1800: the reduced decode path
    big_jpeg.write_bytes(jpeg_bytes(wide_thirds(600)))
    for path in (png, big_jpeg):
        assert crop_classifier.classify_path(path).top_label == "green"
    assert [p.top_label for p in classify_paths(crop_classifier, [png, big_jpeg])] == ["green", "green"]
    out_csv = tmp_path / "out.csv"
    assert (
        classify_main([str(png), str(big_jpeg), "--model", str(crop_model), "--provider", "cpu", "--csv", str(out_csv)])
        == 0
    )
    with open(out_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] for row in rows] == ["green", "green"]


def test_overlay_covers_only_the_cropped_region() -> None:
    image = np.full((60, 180, 3), 128, np.uint8)
    cam = np.ones((4, 4), np.float32)
    blended = overlay(image, cam, 0.5, region=(0.0, 1 / 3, 1.0, 1 / 3))
    assert np.array_equal(blended[:, :60], image[:, :60]) and np.array_equal(blended[:, 120:], image[:, 120:])
    assert not np.array_equal(blended[:, 60:120], image[:, 60:120])


def _metadata(resize: object) -> dict[str, str]:
    metadata = onnx_factory.full_metadata(["a", "b"], 16)
    metadata["resize"] = resize if isinstance(resize, str) else json.dumps(resize)
    return metadata


def test_contract_reads_the_resize_entry() -> None:
    assert read_metadata(onnx_factory.full_metadata(["a", "b"], 16), (16, 16)).resize == STRETCHED
    assert read_metadata(_metadata({"mode": "stretch"}), (16, 16)).resize == STRETCHED
    checked = read_metadata(_metadata({"mode": "shorter_side_crop", "crop_fraction": 0.9}), (16, 16))
    assert checked.resize == ResizeMode(SHORTER_SIDE_CROP, 0.9)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{not json", "resize"),
        ([1, 2], "resize"),
        ({"mode": "letterbox"}, "letterbox"),
        ({"mode": "shorter_side_crop"}, "crop_fraction"),
        ({"mode": "shorter_side_crop", "crop_fraction": 0}, "crop_fraction"),
        ({"mode": "shorter_side_crop", "crop_fraction": 1.5}, "crop_fraction"),
        ({"mode": "shorter_side_crop", "crop_fraction": "0.9"}, "crop_fraction"),
        ({"mode": "shorter_side_crop", "crop_fraction": True}, "crop_fraction"),
    ],
)
def test_contract_refuses_bad_resize_entries(value, says: str) -> None:
    with pytest.raises(ContractError, match=says) as caught:
        read_metadata(_metadata(value), (16, 16))
    assert "resize" in str(caught.value) and "\n" not in str(caught.value)
