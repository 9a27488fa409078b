"""Drawn pictures of three visually distinct kinds -- reddish discs, greenish stripes,
bluish crosses -- in varying shades, sizes and places on noisy backgrounds of a darker
shade of the same colour: a real, tiny image-classification task that a network trained
from random weights learns in a few epochs, for tests that must see learning happen
(and that a network which ignores its input cannot pass)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

KINDS = ("discs", "stripes", "crosses")
_DOMINANT_CHANNEL = {"discs": 0, "stripes": 1, "crosses": 2}  # RGB


def draw(kind: str, size: int, rng) -> np.ndarray:
    background = rng.integers(0, 50, 3)
    background[_DOMINANT_CHANNEL[kind]] = rng.integers(60, 110)
    background = background[::-1]  # images are written by OpenCV: BGR
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    image = np.clip(image.astype(np.int16) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    rgb = rng.integers(40, 140, 3)
    rgb[_DOMINANT_CHANNEL[kind]] = rng.integers(190, 256)
    colour = tuple(int(c) for c in rgb[::-1])  # OpenCV draws BGR
    if kind == "discs":
        for _ in range(rng.integers(1, 4)):
            centre = tuple(int(v) for v in rng.integers(size // 5, 4 * size // 5, 2))
            cv2.circle(image, centre, int(rng.integers(size // 10, size // 5)), colour, -1, cv2.LINE_AA)
    elif kind == "stripes":
        step = int(rng.integers(size // 8, size // 4))
        offset = int(rng.integers(0, step))
        for y in range(offset, size, step):
            cv2.rectangle(image, (0, y), (size - 1, y + step // 2 - 1), colour, -1)
    else:
        thickness = max(2, size // 16)
        for _ in range(rng.integers(1, 3)):
            x, y = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
            arm = int(rng.integers(size // 8, size // 4))
            cv2.line(image, (x - arm, y - arm), (x + arm, y + arm), colour, thickness, cv2.LINE_AA)
            cv2.line(image, (x - arm, y + arm), (x + arm, y - arm), colour, thickness, cv2.LINE_AA)
    return image


def write_shapes(root: Path, per_class: int, size: int = 64, seed: int = 0, kinds=KINDS) -> Path:
    """`per_class` PNGs of each kind in ROOT/KIND/, seeded."""
    rng = np.random.default_rng(seed)
    for kind in kinds:
        folder = Path(root) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{kind}-{i:03d}.png"), draw(kind, size, rng))
    return Path(root)
