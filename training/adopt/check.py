"""Prove an adopted file gives the original's answers before it is written.

The original is run as its own tool would run it — on images preprocessed in numpy,
written out here independently of the graph the pipeline builds — and the adopted file
is run as the app runs it: through the one contract reader (training.model_source,
the route `convnet-train evaluate` takes, which is the app's reader and its guarded first
run). Their probabilities must agree within a tolerance measured on the test models
(docs/adopting-models.md): float32 graphs agree to about 1e-6, so 1e-4 leaves room for
other CPUs' kernels; float16 graphs see the same fp16 input, rounded once in numpy
and once in the graph, so they get 2e-3.

Before any of that runs the original in this process, the original graph with the new
input in front is probed in a guarded child (convnet_common.model_probe): a graph that
would take the machine's memory or hours is refused within the probe's limits.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convnet_common.foreign_input import softmax, to_float_input
from convnet_common.model_probe import ModelProbeError, probe_model
from training.adopt.source import AdoptError, AdoptSettings, AdoptSource

FLOAT32_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 2e-3
CHECK_IMAGES = 12
# An 8-image probe says whether the original already answers probabilities.
PROBABILITY_SUM_TOLERANCE = 1e-3


def tolerance_for(dtype: str) -> float:
    return FLOAT16_TOLERANCE if dtype == "float16" else FLOAT32_TOLERANCE


def _sample_photos() -> list[np.ndarray]:
    """scikit-image's bundled photos when it is installed (it is not a dependency)."""
    try:
        from skimage import data
    except ImportError:
        return []
    photos = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        try:
            photos.append(np.asarray(getattr(data, name)(), dtype=np.uint8))
        except Exception:  # noqa: BLE001 - a sample missing from this version or not bundled: draw instead
            continue
    return [p for p in photos if p.ndim == 3 and p.shape[2] == 3]


def check_images(height: int, width: int, count: int = CHECK_IMAGES) -> np.ndarray:
    """`count` uint8 RGB images at the model's size: photos if available, then drawn patterns."""
    import cv2

    images = [cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA) for p in _sample_photos()]
    rng = np.random.default_rng(15)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    images.append(np.stack([x / max(width - 1, 1), y / max(height - 1, 1), np.full_like(x, 0.5)], -1) * 255)
    images.append(np.stack([(np.sin(x / 3) + 1) / 2, (np.cos(y / 5) + 1) / 2, ((x + y) % 16) / 16], -1) * 255)
    images.append(np.zeros((height, width, 3)))
    images.append(np.full((height, width, 3), 255.0))
    while len(images) < count:
        blocky = rng.integers(0, 256, (max(height // 8, 1), max(width // 8, 1), 3)).astype(np.uint8)
        smooth = cv2.resize(blocky, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        images.append(np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255))
    return np.stack([np.clip(np.asarray(i, np.float32), 0, 255).astype(np.uint8) for i in images[:count]])


def preprocess(
    images: np.ndarray, layout: str, mean, std, channel_order: str, dtype: str, channels: int = 3
) -> np.ndarray:
    """uint8 RGB NHWC -> what the original graph takes, computed in float64 as its tool documents it."""
    return to_float_input(images, layout, mean, std, channel_order, dtype, channels)


def looks_like_probabilities(scores: np.ndarray) -> tuple[bool, str]:
    """Whether every row is >= 0 and sums to 1 (within 1e-3), and the evidence in words."""
    sums = scores.astype(np.float64).sum(axis=1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if float(scores.min()) >= 0 and worst <= PROBABILITY_SUM_TOLERANCE:
        return True, f"the original's answers on {len(scores)} test images are >= 0 and sum to 1"
    return False, (
        f"the original's answers on {len(scores)} test images are not probabilities "
        f"(values {float(scores.min()):.3g} to {float(scores.max()):.3g}, row sums {float(np.min(sums)):.3g} to {float(np.max(sums)):.3g})"
    )


def guard_original(composed, file_name: str, largest_batch: int) -> None:
    """Run the original (with the uint8 input in front, `composed`) in the guarded child first.

    AdoptError when it goes over the probe's memory or time limit: the in-process runs
    that follow are then never started.
    """
    with tempfile.TemporaryDirectory(prefix="convnet-adopt-") as folder:
        path = Path(folder) / "original-guarded.onnx"
        try:
            path.write_bytes(composed.SerializeToString())
        except ValueError:
            raise AdoptError(f"{file_name} is over 2 GB, which adopting does not support") from None
        try:
            probe_model(path, [largest_batch])
        except ModelProbeError as error:
            message = str(error).replace(path.name, file_name)
            raise AdoptError(f"the original model's test run was stopped: {message}") from None


@dataclass
class CheckResult:
    images: int
    max_difference: float
    tolerance: float
    top1_agreement: float
    labels: list[str]


def expected_probabilities(source: AdoptSource, settings: AdoptSettings, images: np.ndarray, channels: int):
    batch = preprocess(
        images, settings.layout, settings.mean, settings.std, settings.channel_order, settings.input_dtype, channels
    )
    try:
        scores = np.asarray(source.reference(batch), dtype=np.float32)
    except Exception as error:  # noqa: BLE001 - the original is a stranger's graph; any failure is its own
        from training.adopt.onnx_source import runtime_message

        raise AdoptError(f"the original model fails on the test images: {runtime_message(error)}") from None
    if scores.ndim != 2 or len(scores) != len(images):
        raise AdoptError(f"the original model answered shape {list(scores.shape)} for {len(images)} images")
    return softmax(scores) if settings.output == "logits" else scores.astype(np.float64)


def verify_written(path: Path, source: AdoptSource, settings: AdoptSettings, channels: int) -> CheckResult:
    """Open the not-yet-renamed file as evaluate and the app do, and compare it with the original.

    Raises AdoptError (the caller's atomic write then leaves nothing) when the contract
    refuses it or the probabilities differ by more than the tolerance.
    """
    from training.model_source import EvaluationError, load_model_to_score

    images = check_images(*settings.input_size)
    try:
        model = load_model_to_score(path, batch_size=len(images))
    except EvaluationError as error:
        message = str(error).replace(str(path), path.name).replace(path.name, f"the adopted {source.path.name}")
        raise AdoptError(f"the adopted model is refused when opened as the app opens it: {message}") from None
    step = model.batch_size or len(images)
    adopted = np.concatenate([model.predict(images[i : i + step]) for i in range(0, len(images), step)])
    expected = expected_probabilities(source, settings, images, channels)
    difference = float(np.max(np.abs(adopted.astype(np.float64) - expected)))
    tolerance = tolerance_for(settings.input_dtype)
    if not np.isfinite(difference) or difference > tolerance:
        raise AdoptError(
            f"the adopted model's probabilities differ from the original's by up to {difference:.2e} on "
            f"{len(images)} test images (tolerance {tolerance:.0e}); nothing was written"
        )
    agreement = float(np.mean(adopted.argmax(1) == expected.argmax(1)))
    if model.labels != list(settings.labels):
        raise AdoptError("the adopted model's class names did not read back as written; nothing was written")
    return CheckResult(len(images), difference, tolerance, agreement, model.labels)
