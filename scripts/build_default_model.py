#!/usr/bin/env python3
"""Rebuild the bundled default model, exported_models/digits-lenet5.onnx, from scratch.

LeNet-5 trained by `convnet-train` on scikit-learn's handwritten digits (1,797 8x8 images):
a seeded fifth of them is set aside as a test folder that training never sees, and the
accuracy on it goes into the model's metadata. Because people will drop photos of digits
written dark on light paper, or drawn in a paint program, the training folder also holds
digits this script draws with some of OpenCV's Hershey fonts at random sizes, positions,
stroke widths and rotations, in both polarities; the model inverts dark-on-light input
itself (--normalize-polarity). tests/training/test_default_model.py measures it on digits
drawn with fonts and strokes this script never uses.

    python scripts/build_default_model.py            # ~2 minutes on two CPU cores
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_SEED = 20261122

TRAINING_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
)


def draw_font_digit(digit: int, font: int, rng: np.random.Generator) -> np.ndarray:
    """One digit drawn with a Hershey font on a canvas of random size, light on dark."""
    side = int(rng.integers(40, 160))
    canvas = np.zeros((side, side), np.uint8)
    height_fraction = rng.uniform(0.45, 0.85)
    thickness = max(1, int(round(side * rng.uniform(0.03, 0.10))))
    (width, height), _ = cv2.getTextSize(str(digit), font, 1.0, thickness)
    scale = side * height_fraction / max(height, 1)
    (width, height), _ = cv2.getTextSize(str(digit), font, scale, thickness)
    x = int((side - width) / 2 + rng.uniform(-0.12, 0.12) * side)
    y = int((side + height) / 2 + rng.uniform(-0.12, 0.12) * side)
    cv2.putText(canvas, str(digit), (x, y), font, scale, 255, thickness, cv2.LINE_AA)
    canvas = canvas.astype(np.float32) / 255.0
    angle = rng.uniform(-12, 12)
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, rotation, (side, side))
    if rng.random() < 0.5:
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 1.5))
    return canvas


def to_uint8(canvas: np.ndarray, dark_on_light: bool, rng: np.random.Generator) -> np.ndarray:
    """Ink on a background of random brightness, lit unevenly from one side, with noise."""
    background, ink = rng.uniform(0, 90), rng.uniform(160, 255)
    side = canvas.shape[1]
    lighting = np.linspace(rng.uniform(0.7, 1.0), 1.0, side, dtype=np.float32)
    lighting = lighting[None, :] if rng.random() < 0.5 else lighting[::-1][:, None]
    image = background + canvas * (ink - background)
    if dark_on_light:
        image = (255 - image) * lighting
    else:
        image = image * lighting
    image += rng.normal(0, rng.uniform(0, 8), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def sklearn_digit(image_8x8: np.ndarray, rng: np.random.Generator, pad: bool) -> np.ndarray:
    image = (image_8x8 * (255.0 / 16.0)).astype(np.uint8)
    if pad:  # the digit inside a margin, as in a photo, rather than filling the frame
        margin = int(rng.integers(1, 4))
        image = cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    return image


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def build_dataset(work: Path, seed: int, drawn_per_font: int) -> tuple[Path, Path]:
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits()
    order = rng.permutation(len(digits.target))
    n_test = len(order) // 5
    train_dir, test_dir = work / "train", work / "test"
    for rank, index in enumerate(order):
        label = int(digits.target[index])
        if rank < n_test:
            write_png(
                test_dir / str(label) / f"sklearn-{index:04d}.png", sklearn_digit(digits.images[index], rng, False)
            )
        else:
            write_png(
                train_dir / str(label) / f"sklearn-{index:04d}.png", sklearn_digit(digits.images[index], rng, False)
            )
            write_png(
                train_dir / str(label) / f"sklearn-{index:04d}-pad.png", sklearn_digit(digits.images[index], rng, True)
            )
    for digit in range(10):
        for font_index, font in enumerate(TRAINING_FONTS):
            for k in range(drawn_per_font):
                canvas = draw_font_digit(digit, font, rng)
                image = to_uint8(canvas, dark_on_light=bool(k % 2), rng=rng)
                write_png(train_dir / str(digit) / f"drawn-f{font_index}-{k:03d}.png", image)
    return train_dir, test_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "exported_models" / "digits-lenet5.onnx"))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--drawn-per-font", type=int, default=60)
    parser.add_argument("--work-dir", default=None, help="keep the generated data and run here")
    args = parser.parse_args(argv)

    from training import cli

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="digits-lenet5-"))
    if work.exists() and args.work_dir:
        shutil.rmtree(work)
    try:
        train_dir, test_dir = build_dataset(work / "data", args.seed, args.drawn_per_font)
        run_dir = work / "run"
        common = ["--seed", str(args.seed)]
        status = cli.main(
            [
                "train",
                str(train_dir),
                "--backbone",
                "lenet5",
                "--weights",
                "none",
                "--image-size",
                "32",
                "--epochs",
                str(args.epochs),
                "--batch-size",
                "64",
                "--augment",
                "light",
                "--dropout",
                "0",
                "--normalize-polarity",
                "--dataset-name",
                "sklearn-digits+drawn-digits",
                "--early-stopping-patience",
                "0",
                "--reduce-lr-patience",
                "4",
                "--no-tensorboard",
                "--deterministic",
                "--out",
                str(run_dir),
            ]
            + common
        )
        if status:
            return status
        return cli.main(["export", str(run_dir), "--out", args.out, "--test-dir", str(test_dir)])
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
