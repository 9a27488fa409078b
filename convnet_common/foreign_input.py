"""The float input a model from another tool expects, computed in numpy from uint8 RGB pixels.

One definition for both sides of adoption: `convnet-train adopt` checks the adopted file
against the original run on inputs made here (training/adopt/check.py), and the app's Adopt
dialog previews the original graph on the current picture the same way
(desktop/core/adopt_preview.py). The adopted graph does the same arithmetic in ONNX
(training/adopt/compose.py): x = (pixel / 255 - mean) / std per RGB channel, then a BGR
swap, a grey conversion for one-channel inputs, NCHW, and float16 where the original wants it.
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, what OpenCV's RGB2GRAY uses


def to_float_input(
    images: np.ndarray, layout: str, mean, std, channel_order: str, dtype: str = "float32", channels: int = 3
) -> np.ndarray:
    """uint8 RGB [N, H, W, 3] -> the original graph's input, computed in float64 and cast last."""
    x = (images.astype(np.float64) / 255.0 - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    if channel_order == "bgr":
        x = x[..., ::-1]
    if channels == 1:
        x = (x @ (LUMA if channel_order == "rgb" else LUMA[::-1]))[..., None]
    if layout == "nchw":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x.astype(np.float16 if dtype == "float16" else np.float32))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 (logits of any size stay finite)."""
    shifted = scores.astype(np.float64) - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
