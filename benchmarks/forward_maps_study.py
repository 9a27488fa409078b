"""python -m benchmarks.forward_maps_study: forward-pass maps measured against the exact Grad-CAM.

Models without the in-graph `cam` output get a map computed from forward passes only
(desktop/core/forward_maps.py). This study decides which method and settings the app
uses, on our own models, whose exact Grad-CAM is known:

- the bundled exported_models/digits-lenet5.onnx (32 px, 10 classes), on digits drawn
  with OpenCV's fonts (only those the model reads correctly);
- a 48-px all-convolutional network trained here, from random weights, on drawn discs,
  stripes and crosses (`convnet-train train` + `export`, in a subprocess, cached in
  benchmarks/.cache/forward_maps/; `--shapes-model FILE` uses a file you have).

For every image and method it records: the Spearman rank correlation between the map
and the model's Grad-CAM (the map shrunk to the Grad-CAM's grid); the deletion drop, how
much the top class's probability falls when the 20 % of pixels the map ranks highest are
replaced by the baseline (blurred, and grey), next to the same drop for Grad-CAM itself
and for a random map; and the time per image at the batch size the app uses (32, or 8).
Results: printed as a table and written to benchmarks/.cache/forward_maps/results.json;
the figures and the choice are in docs/activation-maps.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks.common import CACHE_DIR, ROOT, machine_info
from convnet_common.atomic import write_text_atomic
from desktop.core.forward_maps import BLUR, GREY, OCCLUSION, RISE, MapMethod, baseline_image, compute_map

STUDY_DIR = CACHE_DIR / "forward_maps"
DIGITS_MODEL = ROOT / "exported_models" / "digits-lenet5.onnx"
SHAPES_SIZE = 48
SHAPES_EPOCHS = 8
DELETED_SHARE = 0.20
METHODS = {
    "occlusion (blur)": MapMethod(OCCLUSION),
    "occlusion (grey)": MapMethod(OCCLUSION, baseline=GREY),
    "occlusion fine (blur)": MapMethod(OCCLUSION, stride_fraction=1 / 16),
    "RISE 250 (blur)": MapMethod(RISE, masks=250),
    "RISE 500 (blur)": MapMethod(RISE, masks=500),
    "RISE 500 (grey)": MapMethod(RISE, masks=500, baseline=GREY),
    "RISE 1000 (blur)": MapMethod(RISE, masks=1000),
}
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
KINDS = ("crosses", "discs", "stripes")  # the trained model's class folders


# --- images ------------------------------------------------------------------------------


def draw_digit(digit: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A white digit on black, roughly centred, in one of OpenCV's fonts (MNIST-like)."""
    image = np.zeros((size, size), np.uint8)
    font = FONTS[int(rng.integers(len(FONTS)))]
    scale = size / 32 * rng.uniform(0.75, 0.95)
    thickness = int(rng.integers(2, 4))
    (width, height), _ = cv2.getTextSize(str(digit), font, scale, thickness)
    x = (size - width) // 2 + int(rng.integers(-2, 3))
    y = (size + height) // 2 + int(rng.integers(-2, 3))
    cv2.putText(image, str(digit), (x, y), font, scale, 255, thickness, cv2.LINE_AA)
    return np.repeat(image[:, :, None], 3, axis=2)


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """The drawn-shapes task of tests/training/drawn_shapes.py (same rules), as RGB."""
    dominant = {"discs": 0, "stripes": 1, "crosses": 2}[kind]
    background = rng.integers(0, 50, 3)
    background[dominant] = rng.integers(60, 110)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    image = np.clip(image.astype(np.int16) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    rgb = rng.integers(40, 140, 3)
    rgb[dominant] = rng.integers(190, 256)
    colour = tuple(int(c) for c in rgb)
    if kind == "discs":
        for _ in range(rng.integers(1, 4)):
            centre = tuple(int(v) for v in rng.integers(size // 5, 4 * size // 5, 2))
            cv2.circle(image, centre, int(rng.integers(size // 10, size // 5)), colour, -1, cv2.LINE_AA)
    elif kind == "stripes":
        step = int(rng.integers(size // 8, size // 4))
        offset = int(rng.integers(0, step))
        for y in range(offset, size, step):
            cv2.rectangle(image, (0, y), (size - 1, y + step // 2 - 1), colour, -1)
    else:
        thickness = max(2, size // 16)
        for _ in range(rng.integers(1, 3)):
            x, y = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
            arm = int(rng.integers(size // 8, size // 4))
            cv2.line(image, (x - arm, y - arm), (x + arm, y + arm), colour, thickness, cv2.LINE_AA)
            cv2.line(image, (x - arm, y + arm), (x + arm, y - arm), colour, thickness, cv2.LINE_AA)
    return image


def write_shapes_dataset(root: Path, per_class: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rgb = draw_shape(kind, SHAPES_SIZE, rng)
            cv2.imwrite(str(root / kind / f"{kind}-{index:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root


def ensure_shapes_model(log=print) -> Path:
    """Train and export the shapes model once (a few minutes on 2 cores); later runs reuse it."""
    model = STUDY_DIR / f"shapes-allconv-{SHAPES_SIZE}.onnx"
    if model.exists():
        return model
    data = write_shapes_dataset(STUDY_DIR / "shapes-data", per_class=80)
    run = STUDY_DIR / "shapes-run"
    train = [sys.executable, "-m", "training.cli", "train", str(data), "--backbone", "allconv"]
    train += ["--image-size", str(SHAPES_SIZE), "--epochs", str(SHAPES_EPOCHS), "--augment", "none", "--seed", "0"]
    train += ["--no-tensorboard", "--out", str(run)]
    export = [sys.executable, "-m", "training.cli", "export", str(run), "--out", str(model)]
    for command in (train, export):
        log("running: " + " ".join(command[1:]))
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return model


# --- measures -----------------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(len(flat))
    ranks[order] = np.arange(len(flat), dtype=np.float64)
    unique, inverse = np.unique(flat, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=len(unique))
    counts = np.bincount(inverse, minlength=len(unique))
    return (sums / counts)[inverse]  # tied values share their mean rank (Grad-CAM has many zeros)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a, ranks_b = average_ranks(a), average_ranks(b)
    if ranks_a.std() == 0 or ranks_b.std() == 0:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def deletion_drop(run, image: np.ndarray, saliency: np.ndarray, top: int, baseline: np.ndarray) -> tuple[float, float]:
    """Top-class probability lost when the DELETED_SHARE of pixels ranked highest become `baseline`,
    and the same as log-odds (a saturated model, p = 0.9999, shows no probability drop at all)."""
    height, width = image.shape[:2]
    full = cv2.resize(saliency.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    jitter = np.random.default_rng(0).random(full.shape) * 1e-9  # breaks ties (flat maps) the same way each time
    order = np.argsort(-(full + jitter), axis=None)[: round(DELETED_SHARE * full.size)]
    deleted = image.copy().reshape(-1, 3)
    deleted[order] = baseline.reshape(-1, 3)[order]
    answers = run(np.stack([image, deleted.reshape(image.shape)]))[:, top].astype(np.float64)
    probabilities = np.clip(answers, 1e-12, 1 - 1e-12)
    log_odds = np.log(probabilities / (1.0 - probabilities))
    return float(probabilities[0] - probabilities[1]), float(log_odds[0] - log_odds[1])


def random_map(shape: tuple[int, int], seed: int) -> np.ndarray:
    coarse = np.random.default_rng(seed).random((7, 7)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


# --- the study ----------------------------------------------------------------------------


def study_model(name: str, path: Path, images: list[np.ndarray], expected: list[str], batch: int, log=print) -> dict:
    """Measure every method on the images the model classifies as `expected` (class names)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])

    def run(batch_images: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {input_name: batch_images})[0]

    height, width = session.get_inputs()[0].shape[1:3]
    rows: dict[str, dict[str, list[float]]] = {label: {} for label in [*METHODS, "Grad-CAM (exact)", "random map"]}
    kept = 0
    for index, (image, truth) in enumerate(zip(images, expected)):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        probabilities, cam = session.run(["probabilities", "cam"], {input_name: image[None]})
        top = int(np.argmax(probabilities[0]))
        if labels[top] != truth:
            continue  # a map of a wrong answer says nothing about the method
        kept += 1
        exact = cam[0, ..., top]
        grid = (exact.shape[1], exact.shape[0])
        baselines = {b: baseline_image(image, MapMethod(baseline=b)) for b in (BLUR, GREY)}
        maps = {"Grad-CAM (exact)": (exact, 0.0), "random map": (random_map((height, width), index), 0.0)}
        for label, method in METHODS.items():
            started = time.perf_counter()
            saliency = compute_map(run, image, top, method, batch)
            maps[label] = (saliency, time.perf_counter() - started)
        for label, (saliency, seconds) in maps.items():
            small = cv2.resize(saliency.astype(np.float32), grid, interpolation=cv2.INTER_AREA)
            row = rows[label]
            row.setdefault("spearman", []).append(spearman(small, exact) if label != "Grad-CAM (exact)" else 1.0)
            for baseline, fill in baselines.items():
                drop, log_odds_drop = deletion_drop(run, image, saliency, top, fill)
                row.setdefault(f"drop_{baseline}", []).append(drop)
                row.setdefault(f"logodds_drop_{baseline}", []).append(log_odds_drop)
            row.setdefault("seconds", []).append(seconds)
    log(f"{name}: {kept} of {len(images)} images classified correctly and measured")
    summary = {}
    for label, row in rows.items():
        finite = {key: [v for v in values if np.isfinite(v)] for key, values in row.items()}
        summary[label] = {
            "passes": METHODS[label].passes((height, width)) if label in METHODS else 0,
            **{f"{key}_median": float(statistics.median(v)) if v else None for key, v in finite.items()},
            **{f"{key}_mean": float(statistics.fmean(v)) if v else None for key, v in finite.items()},
        }
    return {
        "model": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
        "input": [height, width],
        "cam_grid": list(cam.shape[1:3]),
        "images": kept,
        "batch": batch,
        "methods": summary,
    }


def _cell(row: dict, key: str, scale: float = 1.0, digits: int = 3) -> str:
    value = row.get(key)
    return "–" if value is None else f"{value * scale:.{digits}f}"


COLUMNS = (
    ("Spearman vs Grad-CAM (median)", "spearman_median"),
    ("drop, blur (mean)", "drop_blur_mean"),
    ("drop, grey (mean)", "drop_grey_mean"),
    ("log-odds drop, blur (mean)", "logodds_drop_blur_mean"),
    ("log-odds drop, grey (mean)", "logodds_drop_grey_mean"),
)


def render(results: dict) -> str:
    lines = []
    for name, result in results["models"].items():
        lines.append(
            f"\n{name} ({result['model']}, {result['input'][0]} px, Grad-CAM grid "
            f"{result['cam_grid'][0]}x{result['cam_grid'][1]}, {result['images']} images, batch {result['batch']})"
        )
        lines.append("| method | passes | " + " | ".join(title for title, _ in COLUMNS) + " | ms per image (median) |")
        lines.append("|---" * (len(COLUMNS) + 3) + "|")
        for label, row in result["methods"].items():
            seconds = _cell(row, "seconds_median", 1000.0, 0) if row["passes"] else "–"
            cells = " | ".join(_cell(row, key, digits=2 if key.startswith("log") else 3) for _, key in COLUMNS)
            lines.append(f"| {label} | {row['passes'] or '–'} | {cells} | {seconds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.forward_maps_study", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--images", type=int, default=30, help="digit images drawn (default 30)")
    parser.add_argument("--shape-images", type=int, default=10, help="shape images drawn (default 10: 47 s each)")
    parser.add_argument("--batch", type=int, default=32, help="images per forward pass batch (default 32)")
    parser.add_argument("--shapes-model", type=Path, help="use this exported shapes model instead of training one")
    args = parser.parse_args(argv)
    STUDY_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    digits = [str(d) for d in rng.integers(0, 10, args.images)]
    digit_images = [draw_digit(int(d), 32, rng) for d in digits]
    shapes_model = args.shapes_model or ensure_shapes_model()
    kinds = [KINDS[int(k)] for k in rng.integers(0, len(KINDS), args.shape_images)]
    shape_images = [draw_shape(kind, SHAPES_SIZE, rng) for kind in kinds]
    results = {
        "machine": machine_info(),
        "threads": os.cpu_count(),
        "deleted_share": DELETED_SHARE,
        "models": {
            "digits LeNet-5": study_model("digits LeNet-5", DIGITS_MODEL, digit_images, digits, args.batch),
            "shapes all-conv": study_model("shapes all-conv", shapes_model, shape_images, kinds, args.batch),
        },
    }
    write_text_atomic(STUDY_DIR / "results.json", json.dumps(results, indent=2))
    print(render(results))
    print(f"\nwritten: {STUDY_DIR / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
