"""How an image is fitted to a model's input: stretched, or resized and centre-cropped.

ConvNet Studio's own exports are trained on stretched images, so "stretch" is the default.
Models adopted from timm, torchvision and most of the ONNX Model Zoo were evaluated the
other way: resize so the shorter side is the input size divided by a crop fraction
(224 / 0.875 = 256), then take the centre. Feeding them stretched pictures costs accuracy
quietly, so adopted files record the mode (`resize` metadata, docs/model-format.md) and
every path that fits an image to a model (file decode, the reduced JPEG decode, frames,
the activation overlay) asks this module for the same crop box.

The crop is taken as a box of the source image, which is then resized to the input size
by the ordinary resize (area when shrinking). That is the same picture as "resize, then
crop the centre H x W" up to where the box edges round, and it lets the reduced JPEG decode
and the overlay use the very same box scaled to their own pixels.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

STRETCH = "stretch"
SHORTER_SIDE_CROP = "shorter_side_crop"
MODES = (STRETCH, SHORTER_SIDE_CROP)


class ResizeModeError(ValueError):
    """A `resize` entry that cannot be used; the message is one line."""


@dataclass(frozen=True)
class ResizeMode:
    """`mode` is STRETCH or SHORTER_SIDE_CROP; `crop_fraction` (0 < F <= 1) only matters for the crop."""

    mode: str = STRETCH
    crop_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ResizeModeError(
                f"resize mode '{str(self.mode)[:40]}' is not known; this app reads {', '.join(MODES)}"
            )
        fraction = self.crop_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ResizeModeError(f"crop_fraction must be a number above 0 and at most 1, got {str(fraction)[:40]}")

    @property
    def crops(self) -> bool:
        return self.mode == SHORTER_SIDE_CROP

    def to_json(self) -> str:
        """The metadata value: {"mode": "stretch"} or {"mode": "shorter_side_crop", "crop_fraction": F}."""
        if not self.crops:
            return json.dumps({"mode": STRETCH})
        return json.dumps({"mode": SHORTER_SIDE_CROP, "crop_fraction": self.crop_fraction})

    @classmethod
    def from_value(cls, value: object) -> ResizeMode:
        """Read the parsed JSON of the `resize` entry, or raise ResizeModeError saying what is wrong."""
        if not isinstance(value, dict) or not isinstance(value.get("mode"), str):
            raise ResizeModeError('must be a JSON object {"mode": "stretch"} or {"mode": "shorter_side_crop", ...}')
        if value["mode"] == SHORTER_SIDE_CROP:
            if "crop_fraction" not in value:
                raise ResizeModeError("mode shorter_side_crop needs a crop_fraction (0 < F <= 1)")
            return cls(SHORTER_SIDE_CROP, value["crop_fraction"])
        return cls(value["mode"])


STRETCHED = ResizeMode()


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def crop_box(
    image_height: int, image_width: int, height: int, width: int, resize: ResizeMode = STRETCHED
) -> tuple[int, int, int, int]:
    """(top, left, box height, box width): the part of an image the model sees, in its own pixels.

    Stretch: the whole image. Shorter-side crop with fraction F, for an input of H x W:
    the shorter side is to become S = floor(min(H, W) / F + 0.5) (round half up; 224 at
    0.875 gives 256), so the scale is s = max(S / min(h, w), H / h, W / w) (the last two
    only matter for a non-square input on an image of another shape: the crop must fit).
    The box is floor(H / s + 0.5) x floor(W / s + 0.5) source pixels (at most the image),
    centred: top = (h - box height) // 2, left = (w - box width) // 2.
    """
    if not resize.crops:
        return 0, 0, image_height, image_width
    shorter = _round_half_up(min(height, width) / resize.crop_fraction)
    scale = max(shorter / min(image_height, image_width), height / image_height, width / image_width)
    box_height = min(image_height, max(1, _round_half_up(height / scale)))
    box_width = min(image_width, max(1, _round_half_up(width / scale)))
    return (image_height - box_height) // 2, (image_width - box_width) // 2, box_height, box_width


def scaled_box(box: tuple[int, int, int, int], factor: int, limit: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box of the full image in the pixels of a decode reduced `factor` times (libjpeg's
    reduced pixel i covers full pixels factor*i … factor*i + factor - 1), kept inside `limit`."""
    top, left, box_height, box_width = box
    limit_height, limit_width = limit
    new_top, new_left = (
        min(limit_height - 1, _round_half_up(top / factor)),
        min(limit_width - 1, _round_half_up(left / factor)),
    )
    new_height = max(1, min(limit_height - new_top, _round_half_up(box_height / factor)))
    new_width = max(1, min(limit_width - new_left, _round_half_up(box_width / factor)))
    return new_top, new_left, new_height, new_width


def reduced_crop_box(
    stored_size: tuple[int, int],
    reduced_shape: tuple[int, int],
    factor: int,
    height: int,
    width: int,
    resize: ResizeMode,
) -> tuple[int, int, int, int]:
    """The crop box of the full-size upright picture, in the pixels of a JPEG decoded `factor` times smaller.

    The box is computed on the full size (`stored_size`, the header's width and height),
    not on the reduced one, so both decodes crop the same region (libjpeg rounds reduced
    sizes up, which would move a box computed on them). EXIF orientation may have turned
    the reduced image: its shape says which way.
    """
    stored_width, stored_height = stored_size
    upright = (stored_height, stored_width)
    if (-(-stored_height // factor), -(-stored_width // factor)) != tuple(reduced_shape):
        upright = (stored_width, stored_height)
    return scaled_box(crop_box(*upright, height, width, resize), factor, reduced_shape)
