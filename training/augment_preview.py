"""`convnet-train augment-preview`: a grid of what the augmentation does to one image.

Runs the very layers training uses, so the grid shows what the network will see.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from convnet_common.atomic import write_bytes_atomic
from convnet_common.imaging import load_image_rgb, resize_for_model
from training.augment import AugmentSpec, build_augmentation


def augmented_variants(image: np.ndarray, spec: AugmentSpec, count: int, seed: int) -> list[np.ndarray]:
    """`count` random variants of an RGB uint8 image (the original when the spec does nothing)."""
    import keras

    augmentation = build_augmentation(spec, seed=seed)
    if augmentation is None:
        return [image.copy() for _ in range(count)]
    keras.utils.set_random_seed(seed)
    batch = np.repeat(image[None].astype(np.float32), count, axis=0)
    out = keras.ops.convert_to_numpy(augmentation(batch, training=True))
    return [np.clip(np.round(variant), 0, 255).astype(np.uint8) for variant in out]


def preview_grid(
    image_path: str | Path, spec: AugmentSpec, out: str | Path, count: int = 15, size: int = 192, seed: int = 0
) -> Path:
    """Write the original plus `count` variants as a PNG grid; returns the path."""
    image = resize_for_model(load_image_rgb(image_path), size, size)
    tiles = [image] + augmented_variants(image, spec, count, seed)
    columns = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / columns))
    gap = 6
    canvas = np.full((rows * (size + gap) + gap, columns * (size + gap) + gap, 3), 255, np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        y, x = gap + r * (size + gap), gap + c * (size + gap)
        canvas[y : y + size, x : x + size] = tile
    cv2.putText(canvas, "original", (gap + 6, gap + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(canvas, "original", (gap + 6, gap + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode the preview grid")
    out = Path(out)
    write_bytes_atomic(out, encoded.tobytes())
    return out
