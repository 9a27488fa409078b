"""Activation maps from forward passes only, for models without the in-graph Grad-CAM output.

A ConvNet Studio export carries an exact Grad-CAM (`cam`); a plain or adopted ONNX file
gives only probabilities. These maps need nothing else: the image is shown to the model
many times with parts of it replaced by a baseline (the image blurred, or flat grey),
and a pixel matters for a class as much as the class's probability rises when that pixel
is kept rather than removed.

Both methods are one engine with different masks (1 = pixel kept, 0 = baseline):

- occlusion (the default): a square patch (a quarter of the side) slid over the image
  with a stride of an eighth, one pass per position: 49 passes, coarse (7 x 7 positions,
  about a last-conv-layer grid).
- RISE (Petsiuk et al., 2018): random low-resolution on/off grids, smoothly enlarged
  and shifted; a fixed number of passes (500 here), smoother and ten times the cost.

The default, occlusion against a grey baseline, agreed best with the exact Grad-CAM of our
own models and costs a tenth of RISE (docs/activation-maps.md, benchmarks/forward_maps_study.py).

The map at a pixel is E[p | pixel kept] - E[p | pixel removed], p being the class's
probability: for occlusion that is the drop a patch over the pixel causes, for RISE the
usual estimator with the mean removed (less noise than RISE's plain sum). The cost is
fixed by the settings (`passes`), never by the image; `compute_map` runs them in chunks
of a batch size the guarded first run already checked (`checked_batch_size`), reports
progress after every chunk and stops at the next chunk when cancelled.
The measurements that chose the default are in docs/activation-maps.md.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from convnet_common.model_probe import ModelProbeError, probe_model

OCCLUSION = "occlusion"
RISE = "rise"
BLUR = "blur"
GREY = "grey"
DEFAULT_MAP_BATCH = 32  # images per run: what the measurements in docs/activation-maps.md used
GREY_LEVEL = 128

RunProbabilities = Callable[[np.ndarray], np.ndarray]  # uint8 [B, H, W, 3] -> probabilities [B, C]
Progress = Callable[[int, int], None]  # passes done, passes in all


class MapCancelled(Exception):
    """The map's computation was cancelled (another image, class or model, or the window closing)."""


@dataclass(frozen=True)
class MapMethod:
    """How a forward-pass map is made; every field counts in the cache key (`key`)."""

    name: str = OCCLUSION
    masks: int = 500  # RISE: forward passes
    grid: int = 7  # RISE: cells per side of the random on/off grid
    keep_probability: float = 0.5  # RISE: share of cells kept
    patch_fraction: float = 0.25  # occlusion: patch side / image side
    stride_fraction: float = 0.125  # occlusion: step / image side
    baseline: str = GREY
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in (OCCLUSION, RISE):
            raise ValueError(f"unknown map method {self.name!r}: use {OCCLUSION!r} or {RISE!r}")
        if self.baseline not in (BLUR, GREY):
            raise ValueError(f"unknown baseline {self.baseline!r}: use {BLUR!r} or {GREY!r}")
        if self.masks < 1 or self.grid < 2 or not 0.0 < self.keep_probability < 1.0:
            raise ValueError("RISE needs at least one mask, a grid of 2 or more and a keep probability in (0, 1)")
        if not 0.0 < self.patch_fraction <= 1.0 or not 0.0 < self.stride_fraction <= 1.0:
            raise ValueError("occlusion patch and stride are fractions of the image side in (0, 1]")

    @property
    def title(self) -> str:
        return "RISE" if self.name == RISE else "occlusion"

    def key(self) -> tuple:
        return (
            self.name,
            self.masks,
            self.grid,
            self.keep_probability,
            self.patch_fraction,
            self.stride_fraction,
            self.baseline,
            self.seed,
        )

    def passes(self, input_size: tuple[int, int]) -> int:
        """How many forward passes a map takes for a model of this input size (fixed by the settings)."""
        if self.name == RISE:
            return self.masks
        (rows, _), (cols, _) = (_patch_positions(side, self) for side in input_size)
        return len(rows) * len(cols)


DEFAULT_METHOD = MapMethod()  # occlusion, grey baseline: see the module docstring


def caption(method: MapMethod, input_size: tuple[int, int]) -> str:
    """What the view says under a computed map, where an exact one would say Grad-CAM."""
    return f"Activation map: computed from {method.passes(input_size)} forward passes ({method.title}) — approximate"


def baseline_image(image: np.ndarray, method: MapMethod) -> np.ndarray:
    """What a removed pixel becomes: the image strongly blurred (keeps colour, loses shape) or flat grey."""
    if method.baseline == GREY:
        return np.full_like(image, GREY_LEVEL)
    side = max(image.shape[:2])
    kernel = max(3, (side // 4) | 1)
    return cv2.GaussianBlur(image, (kernel, kernel), 0)


def _patch_positions(side: int, method: MapMethod) -> tuple[list[int], int]:
    """Patch starts along one side (the last one touches the edge) and the patch length."""
    patch = max(1, min(side, round(side * method.patch_fraction)))
    stride = max(1, round(side * method.stride_fraction))
    starts = list(range(0, side - patch + 1, stride))
    if starts[-1] != side - patch:
        starts.append(side - patch)
    return starts, patch


def occlusion_masks(input_size: tuple[int, int], method: MapMethod) -> Iterator[np.ndarray]:
    """One [H, W] float32 keep-mask per patch position: all ones but the patch."""
    height, width = input_size
    (rows, patch_h), (cols, patch_w) = _patch_positions(height, method), _patch_positions(width, method)
    for top in rows:
        for left in cols:
            mask = np.ones((height, width), np.float32)
            mask[top : top + patch_h, left : left + patch_w] = 0.0
            yield mask


def rise_masks(input_size: tuple[int, int], method: MapMethod) -> Iterator[np.ndarray]:
    """RISE's masks, seeded: random grid cells kept, enlarged bilinearly and shifted by under a cell."""
    height, width = input_size
    rng = np.random.default_rng(method.seed)
    cell_h, cell_w = math.ceil(height / method.grid), math.ceil(width / method.grid)
    big = ((method.grid + 1) * cell_w, (method.grid + 1) * cell_h)  # cv2 sizes are (width, height)
    for _ in range(method.masks):
        cells = (rng.random((method.grid, method.grid)) < method.keep_probability).astype(np.float32)
        enlarged = cv2.resize(cells, big, interpolation=cv2.INTER_LINEAR)
        dy, dx = int(rng.integers(0, cell_h)), int(rng.integers(0, cell_w))
        yield np.ascontiguousarray(enlarged[dy : dy + height, dx : dx + width])


def masks_for(input_size: tuple[int, int], method: MapMethod) -> Iterator[np.ndarray]:
    return rise_masks(input_size, method) if method.name == RISE else occlusion_masks(input_size, method)


def compute_map(
    run: RunProbabilities,
    image: np.ndarray,
    class_index: int,
    method: MapMethod = DEFAULT_METHOD,
    batch_size: int = DEFAULT_MAP_BATCH,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """The [H, W] float32 map of `class_index` for one model-input image (uint8 [H, W, 3]).

    `run` is the model (probabilities for a uint8 batch); it is called with at most
    `batch_size` images at a time, `method.passes` images in all. Raises MapCancelled
    when `cancel` is set (checked before every run).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {list(image.shape)}")
    height, width = image.shape[:2]
    total = method.passes((height, width))
    batch_size = max(1, int(batch_size))
    pixels = image.astype(np.float32)
    removed = baseline_image(image, method).astype(np.float32)
    kept_score = np.zeros((height, width), np.float64)
    kept_weight = np.zeros((height, width), np.float64)
    removed_score = np.zeros((height, width), np.float64)
    removed_weight = np.zeros((height, width), np.float64)
    done = 0
    masks = masks_for((height, width), method)
    while done < total:
        if cancel is not None and cancel.is_set():
            raise MapCancelled()
        chunk = np.stack([next(masks) for _ in range(min(batch_size, total - done))])
        blended = chunk[..., None] * pixels + (1.0 - chunk[..., None]) * removed
        batch = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        scores = np.asarray(run(batch), dtype=np.float64)[:, class_index]
        kept_score += np.tensordot(scores, chunk, axes=1)
        kept_weight += chunk.sum(axis=0)
        removed_score += np.tensordot(scores, 1.0 - chunk, axes=1)
        removed_weight += (1.0 - chunk).sum(axis=0)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    with np.errstate(invalid="ignore", divide="ignore"):
        kept = np.where(kept_weight > 0, kept_score / kept_weight, np.nan)
        gone = np.where(removed_weight > 0, removed_score / removed_weight, np.nan)
    saliency = kept - gone
    return np.nan_to_num(saliency, nan=0.0).astype(np.float32)


def checked_batch_size(model_path, fixed_batch: int | None, wanted: int = DEFAULT_MAP_BATCH) -> int:
    """The largest batch size up to `wanted` that the guarded first run already ran for this file.

    convnet_common/model_probe.py ran 1, 2 and the sizes callers asked for, and its
    throughput measurement ran every power of two up to the size it chose; the verdict
    is kept by the file's SHA-256, so this is a look-up. A stranger's model is never run
    at a size nobody checked: without a verdict (the cache is unwritable, the file moved)
    the answer is 2, which every load runs. A fixed-batch model runs its own size.
    """
    if fixed_batch:
        return int(fixed_batch)
    try:
        verdict = probe_model(model_path)
    except (ModelProbeError, OSError):
        return 2
    checked = {1, 2, *(int(b) for b in verdict.get("batch_sizes", ()) if isinstance(b, int))}
    measured = verdict.get("throughput_batch")
    if isinstance(measured, int) and measured > 0:
        checked.update(2**power for power in range(int(math.log2(measured)) + 1))
    return max(size for size in checked if size <= max(1, wanted))
