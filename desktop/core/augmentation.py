"""Augmentation preview without TensorFlow: the training pipeline's random layers, redone in OpenCV.

Training (training/augment.py) runs Keras 3 layers in this order: RandomFlip,
RandomRotation, RandomTranslation, RandomShear, RandomZoom, RandomBrightness,
RandomContrast. Here one random draw per variant is turned into one affine matrix and
applied with a single `cv2.warpAffine`, followed by the same brightness/contrast math.

Conventions read from keras/src/layers/preprocessing/image_preprocessing/*.py (Keras
3.15), all of which map an OUTPUT pixel (x, y) to the INPUT position it samples, with
pixel centres at integer coordinates (so `cv2.WARP_INVERSE_MAP` with the same matrix):

* Flip: one uniform draw u, flipped when u <= 0.5. With both flips on, that SAME draw
  flips both axes, so Keras only ever produces "unchanged" or "rotated 180°" — never
  one mirror alone. We reproduce that.
* Rotation: angle θ ~ U(-deg, +deg) degrees (factor = deg/360, times 360), about the
  centre ((W-1)/2, (H-1)/2); input = R(θ)·(out - c) + c with R = [[cos, -sin], [sin, cos]].
  In image coordinates (y down) a positive θ turns the CONTENT counter-clockwise on screen.
* Translation: dx ~ U(-w, w)·W, dy ~ U(-h, h)·H; input = out - (dx, dy): content moves by +dx.
* Shear: s ~ U(-shear, shear) (times a random ±1, same distribution); input_x = out_x + s·out_y,
  NOT centred: row y slides by -s·y pixels, so the top row stays put and the bottom row
  moves most. `shear` is therefore a slope, not "a fraction of the width".
* Zoom: z ~ U(1 - zoom, 1 + zoom), one factor for both axes; input = z·(out - c) + c, so
  z > 1 ZOOMS OUT (content shrinks, borders get filled) and z < 1 zooms in.
* Brightness: delta ~ U(-b, b)·255 added to every channel, clipped to 0..255.
* Contrast: f ~ U(1, 1 + c) — Keras clamps the lower factor bound at 0, so training
  only ever INCREASES contrast; per-channel mean m over the image, out = (x - m)·f + m,
  clipped.
* Fill modes (TF ImageProjectiveTransformV3): nearest = BORDER_REPLICATE, constant =
  BORDER_CONSTANT with 0, reflect "(d c b a | a b c d | d c b a)" = BORDER_REFLECT (not
  _101). Wrap is NOT quite BORDER_WRAP: TF clamps the seam band instead of blending
  across it, so wrap maps coordinates the TF way and uses cv2.remap (see _tf_wrap).

Known differences: Keras resamples once per layer (four bilinear passes when all are on,
and each layer fills its own borders); we resample once. Inside the image the results
agree to within about a grey level on smooth images; filled border areas can show a
different pattern when several geometric layers are combined, and the preview is slightly
sharper than what training sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from convnet_common.augment_spec import FIELD_NAMES, FILL_MODES, PRESETS, AugmentSpec  # noqa: F401 - FILL_MODES re-exported for the views

BORDER_MODES = {
    "nearest": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
}
PREVIEW_MAX_SIDE = 256
UNIT_COUNT = 8  # uniform numbers per variant: flip, angle, dx, dy, shear, zoom, brightness, contrast


# One definition for training and this preview: the same fields, limits and presets.
AugmentParams = AugmentSpec


def preset_name(params: AugmentParams) -> str | None:
    """The preset these parameters equal, if any (so the combo can show it)."""
    return next((name for name, preset in PRESETS.items() if preset == params), None)


def params_from_metadata(value: object) -> tuple[AugmentParams | None, str]:
    """Model metadata's augmentation value to parameters, plus a one-line note for the user.

    Older or foreign models store other keys; unknown keys are ignored rather than
    refusing the whole setting, and a value with no known key at all gives None.
    """
    if not isinstance(value, dict):
        return None, "The model's metadata has no augmentation settings."
    known = {key: value[key] for key in FIELD_NAMES if key in value}
    if not known:
        return None, "The model's augmentation metadata has no settings this preview knows."
    try:
        cleaned = {
            k: (bool(v) if k.endswith("_flip") else v if k == "fill_mode" else float(v)) for k, v in known.items()
        }
        params = AugmentParams(**cleaned)
    except (TypeError, ValueError, OverflowError) as error:
        return None, f"The model's augmentation metadata is not usable: {error}"
    ignored = sorted(set(value) - set(FIELD_NAMES))
    note = f"Model's settings (ignored: {', '.join(ignored)})." if ignored else "Model's settings."
    return params, note


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def to_yaml(params: AugmentParams) -> str:
    """The `convnet-train train --augment FILE.yaml` file: one `key: value` line per field."""
    lines = ["# Augmentation settings for: convnet-train train --augment THIS_FILE.yaml"]
    lines += [f"{name}: {_yaml_scalar(getattr(params, name))}" for name in FIELD_NAMES]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Draw:
    """One variant's random values, in the units the Keras layers use (see module docstring)."""

    flip: bool = False
    angle: float = 0.0  # degrees
    tx: float = 0.0  # fraction of the width; content moves right when positive
    ty: float = 0.0  # fraction of the height
    shear: float = 0.0  # input_x = out_x + shear * out_y
    zoom: float = 1.0  # > 1 zooms out
    brightness: float = 0.0  # added grey levels
    contrast: float = 1.0  # factor around the per-channel mean


def random_units(rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniform [0, 1) numbers for `count` variants; scaled by the parameters later.

    Keeping the unit draws apart from the parameters makes a slider morph each variant
    smoothly instead of re-rolling the whole grid.
    """
    return rng.random((count, UNIT_COUNT))


def make_draw(params: AugmentParams, units: np.ndarray) -> Draw:
    """Scale eight uniforms to one variant's draw with the Keras distributions."""
    u = [float(x) for x in units]

    def symmetric(value: float, limit: float) -> float:
        return (2.0 * value - 1.0) * limit

    return Draw(
        flip=(params.horizontal_flip or params.vertical_flip) and u[0] <= 0.5,
        angle=symmetric(u[1], params.rotation_degrees),
        tx=symmetric(u[2], params.width_shift),
        ty=symmetric(u[3], params.height_shift),
        shear=symmetric(u[4], params.shear),
        zoom=1.0 + symmetric(u[5], params.zoom),
        brightness=symmetric(u[6], params.brightness) * 255.0,
        contrast=1.0 + u[7] * params.contrast,
    )


def _centred(matrix: np.ndarray, cx: float, cy: float) -> np.ndarray:
    shift, back = np.eye(3), np.eye(3)
    shift[:2, 2] = (-cx, -cy)
    back[:2, 2] = (cx, cy)
    return back @ matrix @ shift


def inverse_matrix(draw: Draw, params: AugmentParams, width: int, height: int) -> np.ndarray:
    """The 3x3 output→input map of the whole geometric chain, composed in Keras's order.

    Keras layer k samples its input at A_k·p, so the chain samples the source at
    A_flip·A_rot·A_trans·A_shear·A_zoom·p.
    """
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    flip = np.eye(3)
    if draw.flip:
        if params.horizontal_flip:
            flip[0, 0], flip[0, 2] = -1.0, width - 1.0
        if params.vertical_flip:
            flip[1, 1], flip[1, 2] = -1.0, height - 1.0
    theta = math.radians(draw.angle)
    rotation = np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1.0]])
    translation = np.array([[1, 0, -draw.tx * width], [0, 1, -draw.ty * height], [0, 0, 1.0]])
    shear = np.array([[1, draw.shear, 0], [0, 1, 0], [0, 0, 1.0]])
    zoom = np.diag([draw.zoom, draw.zoom, 1.0])
    return flip @ _centred(rotation, cx, cy) @ translation @ shear @ _centred(zoom, cx, cy)


def _tf_wrap(coord: np.ndarray, length: int) -> np.ndarray:
    """TensorFlow's FILL_WRAP coordinate map, quirks included (it divides by length - 1 and
    then clamps, so the seam band (length - 1, length) reads one edge pixel instead of
    blending the two sides as cv2.BORDER_WRAP does)."""
    if length <= 1:
        return np.zeros_like(coord)
    size = float(length - 1)
    out = coord.copy()
    low, high = coord < 0, coord > length - 1
    out[low] += length * (np.trunc(-coord[low] / size) + 1)
    out[high] -= length * np.trunc(coord[high] / size)
    return np.clip(out, 0.0, length - 1.0)


def warp(image: np.ndarray, matrix: np.ndarray, fill_mode: str) -> np.ndarray:
    """Sample `image` at matrix·p for every output pixel p (bilinear, Keras's fill mode)."""
    height, width = image.shape[:2]
    if fill_mode == "wrap":  # cv2.BORDER_WRAP differs from TF along the seams: map coordinates as TF does
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        map_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
        map_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
        map_x = _tf_wrap(map_x.astype(np.float32), width)
        map_y = _tf_wrap(map_y.astype(np.float32), height)
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(
        image,
        np.ascontiguousarray(matrix[:2], dtype=np.float64),
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=BORDER_MODES[fill_mode],
        borderValue=(0, 0, 0, 0),
    )


def adjust_photometric(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """RandomBrightness then RandomContrast on float pixels in 0..255, clipped after each."""
    out = image.astype(np.float32)
    if brightness:
        out = np.clip(out + np.float32(brightness), 0.0, 255.0)
    if contrast != 1.0:
        mean = out.mean(axis=(0, 1), keepdims=True)
        out = np.clip((out - mean) * np.float32(contrast) + mean, 0.0, 255.0)
    return out


def apply_draw(image: np.ndarray, draw: Draw, params: AugmentParams) -> np.ndarray:
    """One augmented variant of an HxWx3 uint8 image, as uint8."""
    height, width = image.shape[:2]
    matrix = inverse_matrix(draw, params, width, height)
    geometric = image if np.allclose(matrix, np.eye(3)) else warp(image, matrix, params.fill_mode)
    out = adjust_photometric(geometric, draw.brightness, draw.contrast)
    return np.rint(out).astype(np.uint8)


def variants(image: np.ndarray, params: AugmentParams, units: np.ndarray) -> list[np.ndarray]:
    """One variant per row of `units` (see random_units)."""
    return [apply_draw(image, make_draw(params, row), params) for row in units]


def preview_source(image: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """Shrink a photo so its longer side is at most `max_side`: the grid stays instant."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(image)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
