"""Ordinary photos, and crops of them, that a digits model must call unknown.

The photographs scikit-image and scikit-learn ship with their packages (no download).
Left out on purpose: scikit-image's drawn test patterns (chessboard, colour wheel, logo,
phantom, horse silhouette) and its two pictures of text (`page`, `text`): a crop of a page
of text may well hold a digit, and then "unknown" would be the wrong answer.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "microaneurysms.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3]


def shipped_photos() -> dict[str, np.ndarray]:
    """name -> uint8 RGB photo, from scikit-image's data folder and scikit-learn's samples."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    folder = Path(skimage.data.__file__).parent
    photos = {}
    for name in SKIMAGE_PHOTOS:
        image = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        assert image is not None, f"scikit-image no longer ships {name}"
        if image.dtype != np.uint8:  # 16-bit scans: scale to 8 bits
            image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        if image.ndim == 3:  # OpenCV reads colour as BGR(A)
            image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        photos[f"skimage/{name}"] = _as_rgb(image)
    samples = load_sample_images()
    for name, image in zip(samples.filenames, samples.images):
        photos[f"sklearn/{Path(name).name}"] = _as_rgb(np.asarray(image, dtype=np.uint8))
    return photos


def photo_crops(photos: dict[str, np.ndarray], per_photo: int, seed: int) -> dict[str, list[np.ndarray]]:
    """name -> [the whole photo, `per_photo` square-ish crops of 8-70 % of its shorter side]."""
    rng = np.random.default_rng(seed)
    result = {}
    for name, image in photos.items():
        height, width = image.shape[:2]
        crops = [image]
        for _ in range(per_photo):
            side = max(8, int(min(height, width) * rng.uniform(0.08, 0.70)))
            aspect = rng.uniform(0.75, 1.33)
            h, w = min(height, side), min(width, max(8, int(side * aspect)))
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            crops.append(np.ascontiguousarray(image[y : y + h, x : x + w]))
        result[name] = crops
    return result
