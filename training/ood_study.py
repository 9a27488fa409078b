"""Which "unknown input" score to ship: a measurement on held-out data (docs/unknown-inputs.md).

    .venv/bin/python -m training.ood_study [--backbones lenet5 mnist_convnet] [--seeds 3 4] [--json OUT]

Trains tiny networks on 600 of scikit-learn's 1,797 8x8 digits (as the tests' fixture
does) and scores, with every candidate method, images never used for fitting anything:

- in distribution: the validation split (where the threshold is chosen: 95 % accepted)
  and the other 1,197 digits (held out: AUROC and how many the threshold keeps);
- out of distribution: crops of the photos scikit-learn and matplotlib ship, noise
  (uniform and smoothed), flat colours, drawn shapes (another dataset) and drawn
  letters (near: white strokes on black, like the digits).

Methods: 1 - max softmax probability (msp), energy (-logsumexp of the logits), the
Mahalanobis distance to the nearest class mean with a shared Ledoit-Wolf covariance
fitted on the TRAINING split's features at the penultimate layer (input of `logits`)
and at the pooled base feature map, relative Mahalanobis (minus the distance to the
whole training set's Gaussian) and the distance to the k-th nearest training feature
(normalised penultimate features, k = 5). Reported: AUROC (held-out digits vs each
OOD set and all together) and the share of each set the 95 % validation threshold accepts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAIN_DIGITS = 600
PER_SET = 150


# --------------------------------------------------------------------------- data


def write_digit_split(root: Path, seed: int = 0) -> tuple[Path, list[np.ndarray]]:
    """The first TRAIN_DIGITS of a seeded order as class folders; the rest returned as 8x8 PNG-equivalent arrays."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    held_out = []
    for rank, index in enumerate(order):
        image = (digits.images[index] * 255 / 16).astype(np.uint8)
        if rank < TRAIN_DIGITS:
            folder = root / str(digits.target[index])
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{index:04d}.png"), image)
        else:
            held_out.append(np.repeat(image[:, :, None], 3, axis=2))
    return root, held_out


def photos() -> list[np.ndarray]:
    """The RGB photos the installed packages ship (scikit-learn's two, matplotlib's one)."""
    from sklearn.datasets import load_sample_images

    images = [np.asarray(i, np.uint8) for i in load_sample_images().images]
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            from convnet_common.imaging import decode_image_rgb

            images.append(decode_image_rgb(handle.read(), "grace_hopper.jpg"))
    except Exception:  # noqa: BLE001 - one photo fewer is still a measurement
        pass
    return images


def photo_crops(count: int, rng) -> list[np.ndarray]:
    sources = photos()
    crops = list(sources)
    while len(crops) < count:
        image = sources[int(rng.integers(len(sources)))]
        h, w = image.shape[:2]
        side = int(rng.uniform(0.08, 0.7) * min(h, w))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crops.append(image[y : y + side, x : x + side])
    return crops


def noise(count: int, rng) -> list[np.ndarray]:
    import cv2

    images = []
    for i in range(count):
        image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        if i % 2:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(1.0, 4.0)))
            image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)
        images.append(image)
    return images


def flat_colours(count: int, rng) -> list[np.ndarray]:
    return [np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8) for _ in range(count)]


def shapes(count: int, rng) -> list[np.ndarray]:
    """Discs, stripes and crosses on noisy coloured backgrounds (as tests/training/drawn_shapes.py)."""
    import cv2

    images = []
    for i in range(count):
        size = 64
        image = np.clip(rng.integers(0, 110, 3) + rng.integers(-20, 21, (size, size, 3)), 0, 255).astype(np.uint8)
        colour = tuple(int(c) for c in rng.integers(120, 256, 3))
        kind = i % 3
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                centre = tuple(int(v) for v in rng.integers(size // 5, 4 * size // 5, 2))
                cv2.circle(image, centre, int(rng.integers(size // 10, size // 5)), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            step = int(rng.integers(size // 8, size // 4))
            for y in range(int(rng.integers(0, step)), size, step):
                cv2.rectangle(image, (0, y), (size - 1, y + step // 2 - 1), colour, -1)
        else:
            x, y = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
            arm = int(rng.integers(size // 8, size // 4))
            cv2.line(image, (x - arm, y - arm), (x + arm, y + arm), colour, 4, cv2.LINE_AA)
            cv2.line(image, (x - arm, y + arm), (x + arm, y - arm), colour, 4, cv2.LINE_AA)
        images.append(image)
    return images


def letters(count: int, rng) -> list[np.ndarray]:
    """Capital letters stroked light-on-dark on small canvases, like the 8x8 digits (near OOD)."""
    import cv2

    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX)
    alphabet = "ABCDEFGHJKLMNPQRTUVWXYZ"  # no O, I, S: they are 0, 1, 5
    images = []
    for i in range(count):
        canvas = np.zeros((32, 32), np.uint8)
        font = fonts[int(rng.integers(len(fonts)))]
        thickness = int(rng.integers(2, 5))
        text = alphabet[i % len(alphabet)]
        (w, h), _ = cv2.getTextSize(text, font, 1.0, thickness)
        scale = 24.0 / max(w, h)
        (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
        cv2.putText(canvas, text, ((32 - w) // 2, (32 + h) // 2), font, scale, 255, thickness, cv2.LINE_AA)
        canvas = cv2.resize(cv2.GaussianBlur(canvas, (0, 0), 1.0), (8, 8), interpolation=cv2.INTER_AREA)
        canvas = cv2.normalize(canvas, None, 0, 255, cv2.NORM_MINMAX)
        images.append(np.repeat(canvas[:, :, None], 3, axis=2))
    return images


def ood_sets(seed: int = 1, per_set: int = PER_SET) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "photo crops": photo_crops(per_set, rng),
        "noise": noise(per_set, rng),
        "flat colours": flat_colours(per_set // 3, rng),
        "shapes": shapes(per_set, rng),
        "letters": letters(per_set, rng),
    }


def at_model_size(images: list[np.ndarray], size: int) -> np.ndarray:
    """Resized exactly as the app and training resize (convnet_common.imaging)."""
    from convnet_common.imaging import resize_for_model

    return np.stack([resize_for_model(np.ascontiguousarray(i), size, size) for i in images])


# --------------------------------------------------------------------------- methods


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    top = z.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]


def fit_methods(train: dict) -> dict:
    """Every method as a function (features dict) -> score, fitted on the training split only."""
    from sklearn.covariance import ledoit_wolf

    from training.unknown_score import FEATURES_LAYERED, fit_mahalanobis, mahalanobis_scores, score_vector

    labels = train["labels"]
    maha_penult = fit_mahalanobis(train["penultimate"], labels)
    maha_pooled = fit_mahalanobis(train["pooled"], labels)
    layered = score_vector(FEATURES_LAYERED, train["pooled"], train["spread"], train["penultimate"])
    maha_layered = fit_mahalanobis(layered, labels, FEATURES_LAYERED)

    def layered_score(f):
        return mahalanobis_scores(
            maha_layered, score_vector(FEATURES_LAYERED, f["pooled"], f["spread"], f["penultimate"])
        )

    whole = train["penultimate"].astype(np.float64)
    mean = whole.mean(axis=0)
    background = np.linalg.pinv(ledoit_wolf(whole - mean, assume_centered=True)[0])
    bank = whole / np.maximum(np.linalg.norm(whole, axis=1, keepdims=True), 1e-12)

    def relative(f):
        centred = f["penultimate"].astype(np.float64) - mean
        return mahalanobis_scores(maha_penult, f["penultimate"]) - np.einsum(
            "nd,de,ne->n", centred, background, centred
        ) / len(mean)

    def knn(f, k=5):
        q = f["penultimate"].astype(np.float64)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        distances = np.sqrt(np.maximum(2.0 - 2.0 * q @ bank.T, 0.0))
        return np.sort(distances, axis=1)[:, k - 1]

    def msp(f):
        z = np.asarray(f["logits"], np.float64)
        return 1.0 - np.exp(z.max(axis=1) - _logsumexp(z))

    return {
        "1 - max softmax": msp,
        "energy": lambda f: -_logsumexp(f["logits"]),
        "Mahalanobis, penultimate": lambda f: mahalanobis_scores(maha_penult, f["penultimate"]),
        "Mahalanobis, pooled base (shipped for wide networks)": lambda f: mahalanobis_scores(maha_pooled, f["pooled"]),
        "Mahalanobis, layered (shipped)": layered_score,
        "relative Mahalanobis": relative,
        "kNN (k=5), penultimate": knn,
    }


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an OOD image scores above an in-distribution one), ties counted half."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return float(roc_auc_score(truth, np.r_[inside, outside]))


def evaluate(scores: dict[str, np.ndarray], accept_rate: float = 0.95) -> dict:
    """AUROC against the held-out digits and the share accepted at the validation threshold, per set."""
    threshold = float(np.quantile(scores["validation"], accept_rate))
    inside = scores["held-out digits"]
    outside = {name: s for name, s in scores.items() if name not in ("validation", "held-out digits")}
    every = np.concatenate(list(outside.values()))
    result = {
        "threshold": threshold,
        "auroc (all OOD)": auroc(inside, every),
        "accepted: held-out digits": float(np.mean(inside <= threshold)),
        "accepted: all OOD": float(np.mean(every <= threshold)),
    }
    for name, values in outside.items():
        result[f"auroc: {name}"] = auroc(inside, values)
        result[f"accepted: {name}"] = float(np.mean(values <= threshold))
    return result


# --------------------------------------------------------------------------- one run


def study_run(backbone: str, seed: int, work: Path, epochs: int = 4) -> dict:
    from training import cli, data
    from training.export import load_run
    from training.unknown_score import feature_model

    digits_dir, held_out = write_digit_split(work / f"digits-{seed}", seed=0)
    run_dir = work / f"run-{backbone}-{seed}"
    argv = ["train", str(digits_dir), "--backbone", backbone, "--weights", "none", "--epochs", str(epochs)]
    argv += ["--batch-size", "32", "--augment", "none", "--seed", str(seed), "--out", str(run_dir)]
    if cli.main(argv) != 0:
        raise SystemExit(f"training {backbone} failed")
    classifier, result, split = load_run(run_dir)
    size = int(result["image_size"])
    model = feature_model(classifier)

    def features(images: np.ndarray) -> dict:
        pooled, penultimate, logits, spread = model.predict(images, verbose=0, batch_size=64)
        return {"pooled": pooled, "penultimate": penultimate, "logits": logits, "spread": spread}

    train_images, train_labels = data.load_batch([data.Sample(p, label) for p, label in split["train"]], size)
    val_images, _ = data.load_batch([data.Sample(p, label) for p, label in split["val"]], size)
    train = dict(features(train_images), labels=train_labels)
    sets = {"validation": features(val_images), "held-out digits": features(at_model_size(held_out, size))}
    sets.update({name: features(at_model_size(images, size)) for name, images in ood_sets().items()})
    methods = fit_methods(train)
    table = {name: evaluate({s: method(f) for s, f in sets.items()}) for name, method in methods.items()}
    return {
        "backbone": backbone,
        "seed": seed,
        "val_accuracy": result["best_val_accuracy"],
        "images": {name: len(next(iter(f.values()))) for name, f in sets.items()},
        "methods": table,
    }


def format_table(runs: list[dict]) -> str:
    columns = ["auroc (all OOD)", "accepted: held-out digits", "accepted: all OOD"]
    set_names = [k[len("auroc: ") :] for k in runs[0]["methods"]["energy"] if k.startswith("auroc: ")]
    lines = []
    for run in runs:
        lines.append(
            f"\n{run['backbone']} seed {run['seed']} (val accuracy {run['val_accuracy']:.3f}), {run['images']}"
        )
        header = f"{'method':38} {'AUROC':>6} {'ID acc':>6} {'OOD acc':>7} | " + " ".join(
            f"{n[:12]:>12}" for n in set_names
        )
        lines += [header, "-" * len(header)]
        for name, row in run["methods"].items():
            per_set = " ".join(f"{row[f'auroc: {n}']:.3f}/{row[f'accepted: {n}']:.2f}".rjust(12) for n in set_names)
            lines.append(f"{name:38} {row[columns[0]]:6.3f} {row[columns[1]]:6.2f} {row[columns[2]]:7.2f} | {per_set}")
    lines.append("\nper set: AUROC / share accepted at the 95 % validation threshold")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ood_study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["lenet5", "mnist_convnet"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[3, 4])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="ood-study-") as folder:
        for backbone in args.backbones:
            for seed in args.seeds:
                runs.append(study_run(backbone, seed, Path(folder), args.epochs))
    print(format_table(runs), flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
