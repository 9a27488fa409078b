"""Digits drawn in ways the default model's build script never uses, for generalisation tests.

The build script trains on scikit-learn's 8x8 digits and on square canvases with the
Hershey SIMPLEX, DUPLEX, PLAIN, TRIPLEX and SCRIPT_SIMPLEX fonts. Here: the COMPLEX,
COMPLEX_SMALL and SCRIPT_COMPLEX fonts, plus digits stroked with a pen as polylines (as in a
paint program), on landscape 'paper' with uneven lighting, saved through JPEG.
"""

from __future__ import annotations

import cv2
import numpy as np

HELD_OUT_FONTS = (cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)

# Pen strokes on a 0..1 box (x right, y down), one or more polylines per digit.
PEN_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [
        [(0.5, 0.0), (0.15, 0.2), (0.1, 0.5), (0.15, 0.8), (0.5, 1.0), (0.85, 0.8), (0.9, 0.5), (0.85, 0.2), (0.5, 0.0)]
    ],
    1: [[(0.3, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    2: [[(0.15, 0.2), (0.4, 0.0), (0.75, 0.05), (0.85, 0.3), (0.7, 0.55), (0.1, 1.0), (0.9, 1.0)]],
    3: [[(0.15, 0.05), (0.8, 0.05), (0.45, 0.45), (0.8, 0.6), (0.85, 0.85), (0.5, 1.0), (0.15, 0.9)]],
    4: [[(0.65, 1.0), (0.65, 0.0), (0.1, 0.7), (0.9, 0.7)]],
    5: [[(0.85, 0.0), (0.2, 0.0), (0.15, 0.45), (0.6, 0.4), (0.85, 0.65), (0.7, 0.95), (0.4, 1.0), (0.1, 0.9)]],
    6: [
        [
            (0.75, 0.0),
            (0.35, 0.25),
            (0.15, 0.65),
            (0.3, 0.95),
            (0.65, 0.95),
            (0.8, 0.7),
            (0.6, 0.5),
            (0.3, 0.55),
            (0.17, 0.65),
        ]
    ],
    7: [[(0.1, 0.0), (0.9, 0.0), (0.4, 1.0)]],
    8: [
        [
            (0.5, 0.45),
            (0.2, 0.25),
            (0.5, 0.0),
            (0.8, 0.25),
            (0.5, 0.45),
            (0.15, 0.72),
            (0.5, 1.0),
            (0.85, 0.72),
            (0.5, 0.45),
        ]
    ],
    9: [[(0.8, 0.4), (0.5, 0.5), (0.2, 0.35), (0.3, 0.05), (0.65, 0.0), (0.8, 0.2), (0.8, 0.4), (0.75, 1.0)]],
}


def _ink_mask_font(digit: int, font: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    thickness = max(1, int(height * rng.uniform(0.03, 0.07)))
    (w, h), _ = cv2.getTextSize(str(digit), font, 1.0, thickness)
    scale = height * rng.uniform(0.5, 0.75) / h
    (w, h), _ = cv2.getTextSize(str(digit), font, scale, thickness)
    cv2.putText(mask, str(digit), ((width - w) // 2, (height + h) // 2), font, scale, 255, thickness, cv2.LINE_AA)
    return mask


def _ink_mask_pen(digit: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    box_h = height * rng.uniform(0.5, 0.75)
    box_w = box_h * rng.uniform(0.5, 0.7)
    x0, y0 = (width - box_w) / 2, (height - box_h) / 2
    thickness = max(2, int(height * rng.uniform(0.04, 0.08)))
    for stroke in PEN_STROKES[digit]:
        points = np.array([(x0 + x * box_w, y0 + y * box_h) for x, y in stroke], np.int32)
        cv2.polylines(mask, [points], False, 255, thickness, cv2.LINE_AA)
    return mask


def draw_test_digit(digit: int, style: str, dark_on_light: bool, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 'photo' of one digit; `style` is 'font0'..'font2' or 'pen'."""
    height = int(rng.integers(90, 200))
    width = int(height * rng.uniform(1.0, 1.4))
    if style == "pen":
        mask = _ink_mask_pen(digit, height, width, rng)
    else:
        mask = _ink_mask_font(digit, HELD_OUT_FONTS[int(style[-1])], height, width, rng)
    ink = mask.astype(np.float32) / 255.0
    lighting = np.linspace(rng.uniform(0.75, 1.0), 1.0, width, dtype=np.float32)[None, :]
    if dark_on_light:
        paper = rng.uniform(200, 245) * lighting
        grey = paper * (1 - ink) + rng.uniform(10, 60) * ink
    else:
        screen = rng.uniform(0, 40) * lighting
        grey = screen * (1 - ink) + rng.uniform(190, 255) * ink
    grey = np.clip(grey + rng.normal(0, 3, grey.shape), 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    tint = rng.uniform(0.9, 1.0, size=3).astype(np.float32)  # paper is rarely neutral grey
    rgb = np.clip(rgb * tint, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
