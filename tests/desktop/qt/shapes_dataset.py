"""A small real-looking dataset for the Train tab: filled circles, squares and triangles.

Random colours, sizes and places on white, drawn with OpenCV; a planted unreadable file
and the same picture in two classes (a label conflict), as a person's folder might have.
Used by the whole-loop test (test_train_loop.py) and the Train-tab screenshots
(xvfb_train.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle")


def draw(shape: str, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """A filled shape of a random colour, size and place on white (BGR)."""
    image = np.full((size, size, 3), 255, np.uint8)
    colour = tuple(int(c) for c in rng.integers(0, 180, 3))
    cx, cy = int(rng.integers(16, 24)), int(rng.integers(16, 24))
    r = int(rng.integers(8, 14))
    if shape == "circle":
        cv2.circle(image, (cx, cy), r, colour, -1)
    elif shape == "square":
        cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        cv2.fillPoly(image, [np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]])], colour)
    return image


def write_shapes(root: Path, per_class: int = 16, seed: int = 7) -> Path:
    """root/<shape>/*.png, plus circle/broken.png (unreadable) and triangle/copied-square.png."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True)
        for index in range(per_class):
            cv2.imwrite(str(root / shape / f"{shape}-{index:02d}.png"), draw(shape, rng))
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    shutil.copy(root / "square" / "square-00.png", root / "triangle" / "copied-square.png")
    return root


def write_unlabelled(folder: Path, count: int = 12, seed: int = 11) -> Path:
    """New pictures of the three shapes, mixed, with no class folders: what Label new images takes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(folder / f"new-{index:02d}.png"), draw(SHAPES[index % 3], rng))
    return folder
