"""Grad-CAM display: normalise a raw map and blend it over the original image.

Models export raw, non-negative maps; scaling per class for display keeps the model
file free of presentation choices.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Display name -> OpenCV colormap id; the first is the default.
COLORMAPS: dict[str, int] = {
    "Jet": cv2.COLORMAP_JET,
    "Turbo": cv2.COLORMAP_TURBO,
    "Viridis": cv2.COLORMAP_VIRIDIS,
    "Inferno": cv2.COLORMAP_INFERNO,
    "Magma": cv2.COLORMAP_MAGMA,
    "Plasma": cv2.COLORMAP_PLASMA,
    "Hot": cv2.COLORMAP_HOT,
    "Bone": cv2.COLORMAP_BONE,
}
DEFAULT_COLORMAP = "Jet"


def colormap_id(name: str) -> int:
    """The OpenCV id for a display name; unknown names (old settings) give the default."""
    return COLORMAPS.get(name, COLORMAPS[DEFAULT_COLORMAP])


def normalise_cam(cam2d: np.ndarray) -> np.ndarray:
    """Scale a raw [h, w] map to float32 [0, 1] by its maximum; an all-zero map stays zero."""
    cam = np.nan_to_num(np.asarray(cam2d, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    if peak <= 0.0:
        return np.zeros_like(cam)
    return cam / peak


def colourise(cam2d: np.ndarray, height: int, width: int, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A normalised map resized to height x width and colour-mapped, as uint8 RGB."""
    # Quantise the small map first and enlarge it as uint8: a third of the cost of
    # enlarging floats on a full-size photo, and at most a grey level or two apart.
    small = np.clip(normalise_cam(cam2d) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    resized = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.applyColorMap(resized, _rgb_lut(colormap))


@functools.cache
def _rgb_lut(colormap: int) -> np.ndarray:
    """OpenCV's colormap as a 256-entry RGB table, so no BGR->RGB pass over the full image."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return np.ascontiguousarray(cv2.applyColorMap(ramp, colormap)[:, :, ::-1])


def overlay(
    rgb: np.ndarray,
    cam2d: np.ndarray,
    opacity: float,
    colormap: int = cv2.COLORMAP_JET,
    region: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """Blend the colour-mapped activation map over `rgb`; opacity 0 returns the image unchanged.

    `region` (top, left, height, width as fractions of the image; None: all of it) is the
    part the model saw: a centre-cropping model's map covers only its crop, so it is drawn
    over that part and the rest of the picture is left as it is (Prediction.map_region).
    """
    opacity = float(np.clip(opacity, 0.0, 1.0))
    if opacity == 0.0:
        return rgb.copy()
    if region is None:
        heat = colourise(cam2d, rgb.shape[0], rgb.shape[1], colormap)
        return cv2.addWeighted(rgb, 1.0 - opacity, heat, opacity, 0.0)
    height, width = rgb.shape[:2]
    top, left = round(region[0] * height), round(region[1] * width)
    bottom = max(top + 1, min(height, round((region[0] + region[2]) * height)))
    right = max(left + 1, min(width, round((region[1] + region[3]) * width)))
    out = rgb.copy()
    part = np.ascontiguousarray(rgb[top:bottom, left:right])
    heat = colourise(cam2d, part.shape[0], part.shape[1], colormap)
    out[top:bottom, left:right] = cv2.addWeighted(part, 1.0 - opacity, heat, opacity, 0.0)
    return out


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB image, for atomic saving (cv2.imwrite cannot write to a temp path safely)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return data.tobytes()
