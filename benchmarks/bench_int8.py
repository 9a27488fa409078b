#!/usr/bin/env python3
"""int8 quantisation schemes side by side: agreement with fp32, CPU independence, speed.

Why: full-range int8 weights saturate in ONNX Runtime's u8s8 kernels on CPUs without
VNNI (training/int8_safety.py), so the same int8 file answered differently on different
machines. This measures, for each scheme, on two small networks trained here (LeNet-5 on
scikit-learn's digits as in the tests' fixture, and a 3-class all-conv net on the digits
3, 5 and 8):

- top-1 agreement with fp32 and the largest probability difference, for the model as the
  app runs it (all graph optimisations: fused integer kernels) and for the unfused
  reference (the QDQ graph as written: float maths on dequantised values, no integer
  kernel), and the fused model against that reference — the part that depends on the CPU;
- whether the graph can saturate anywhere (read from the graph, same answer on any CPU);
- images per second, one thread, batches of 32, all models timed in interleaved rounds
  in one process, median of the rounds (on a shared machine, compare ratios, not values).

    .venv/bin/python benchmarks/bench_int8.py [--rounds 7] [--json OUT.json]

Trained runs are cached in benchmarks/.cache/int8/ (delete it to retrain).

Measured 2026-12-01 on a shared 2-core AMD EPYC (AVX2, no AVX-512, no VNNI),
onnxruntime 1.31.1, 7 rounds. app = all optimisations (fused integer kernels),
ref = unfused reference; "saturable" counts operands `saturating_operands` flags.

    scheme                 LeNet-5 (120 images)               all-conv, 3 classes (108 images)
                           app/fp32 ref/fp32 app/ref  vs fp32    app/fp32 ref/fp32 app/ref  vs fp32  saturable
    S8S8 (before)          0.9750   0.9917   0.9667   0.61x      0.9907   1.0000   0.9907   1.81x    11 / 11
    U8S8                   0.9750   0.9917   0.9667   0.61x      1.0000   1.0000   1.0000   1.83x     8 / 10
    U8S8 7-bit (chosen)    0.9917   0.9917   1.0000   0.61x      1.0000   1.0000   1.0000   1.84x     0 / 0
    U8S8 7-bit per-tensor  0.9833   0.9833   1.0000   0.60x      1.0000   1.0000   1.0000   1.94x     0 / 0
    S8S8 7-bit             0.9917   0.9917   1.0000   0.60x      1.0000   1.0000   1.0000   1.87x     3 / 1
    U8U8                   1.0000   1.0000   1.0000   0.49x      1.0000   1.0000   1.0000   1.25x     0 / 0

Max probability difference, app vs ref: 0.224 (LeNet) and 0.071 (all-conv) for S8S8,
0.000 and 0.017 for U8S8 7-bit. So: full-range weights saturate here (app and ref
differ); 7-bit weights with uint8 activations match the reference's answers at no cost in
speed (exactly on LeNet, within 0.017 in probability on all-conv);
U8U8 is as exact; it was slower in that run (LeNet 0.49x vs 0.61x), but not in every
run (a later 3-round run: all-conv 2.30x vs 1.94x for U8S8 7-bit); S8S8 7-bit leaves int8
activations as second MatMul operands (Grad-CAM graph), which can still saturate.
fp32 itself: 3,255 (LeNet) and 99 (all-conv) images/s; int8 only pays off on the
larger network.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convnet_common.atomic import write_text_atomic
from training.int8_safety import DEFAULT_SCHEME, FULL_RANGE_S8S8, Int8Scheme

SCHEMES: dict[str, Int8Scheme] = {
    "S8S8 (before)": FULL_RANGE_S8S8,
    "U8S8": Int8Scheme("uint8", "int8", reduce_range=False, per_channel=True),
    "U8S8 7-bit (new default)": DEFAULT_SCHEME,
    "U8S8 7-bit per-tensor": Int8Scheme("uint8", "int8", reduce_range=True, per_channel=False),
    "S8S8 7-bit": Int8Scheme("int8", "int8", reduce_range=True, per_channel=True),
    "U8U8": Int8Scheme("uint8", "uint8", reduce_range=False, per_channel=True),
    "U8U8 per-tensor": Int8Scheme("uint8", "uint8", reduce_range=False, per_channel=False),
}
NETWORKS = {  # name: (backbone, digit classes, epochs)
    "lenet5": ("lenet5", tuple(range(10)), 4),
    "allconv-3class": ("allconv", (3, 5, 8), 6),
}


def _write_digits(root: Path, classes: tuple[int, ...], limit: int, seed: int = 0) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    chosen = [i for i in np.random.default_rng(seed).permutation(len(digits.target)) if digits.target[i] in classes]
    for index in chosen[:limit]:
        folder = root / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), (digits.images[index] * 255 / 16).astype(np.uint8))


def _trained(cache: Path, name: str, log) -> tuple[Any, np.ndarray, np.ndarray]:
    """(fp32 ONNX model, calibration = training images, check = validation images), trained once."""
    import onnx

    from training import cli, data
    from training.export import export_run

    backbone, classes, epochs = NETWORKS[name]
    run, model_path = cache / f"run-{name}", cache / f"{name}-fp32.onnx"
    if not (run / "split.json").exists():
        log(f"training {name} ({epochs} epochs) ...")
        images = cache / f"digits-{name}"
        if not images.exists():
            _write_digits(images, classes, 600)
        status = cli.main(
            [
                "train",
                str(images),
                "--backbone",
                backbone,
                "--weights",
                "none",
                "--epochs",
                str(epochs),
                "--batch-size",
                "32",
                "--augment",
                "none",
                "--seed",
                "3",
                "--out",
                str(run),
            ]
        )
        if status != 0:
            raise RuntimeError(f"training {name} failed")
    if not model_path.exists():
        export_run(run, model_path)
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    size = int(onnx.load(str(model_path)).graph.input[0].type.tensor_type.shape.dim[1].dim_value)
    calibration, _ = data.load_batch([data.Sample(p, label) for p, label in split["train"]], size)
    check, _ = data.load_batch([data.Sample(p, label) for p, label in split["val"]], size)
    return onnx.load(str(model_path)), calibration, check


def _single_thread_session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _speeds(models: dict[str, Any], images: np.ndarray, rounds: int, seconds: float = 0.5) -> dict[str, float]:
    """Images per second for each model: one thread, batches of 32, median of interleaved rounds."""
    batch = np.ascontiguousarray(np.resize(images, (32, *images.shape[1:])))
    sessions = {key: _single_thread_session(model) for key, model in models.items()}
    rates: dict[str, list[float]] = {key: [] for key in sessions}
    for _ in range(rounds):
        for key, session in sessions.items():
            session.run(None, {"image": batch})
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                session.run(None, {"image": batch})
                count += len(batch)
            rates[key].append(count / (time.perf_counter() - started))
    return {key: float(np.median(values)) for key, values in rates.items()}


def measure_network(name: str, cache: Path, rounds: int, log) -> dict[str, Any]:
    from training import precision
    from training.int8_safety import saturating_operands

    fp32, calibration, check = _trained(cache, name, log)
    fp32_session = precision._session(fp32)
    rows, models = {}, {"fp32": fp32}
    for label, scheme in SCHEMES.items():
        log(f"{name}: {label}")
        model = precision.to_int8(fp32, calibration, scheme)
        fused, reference = precision._session(model), precision._session(model, reference=True)
        app = precision.agreement(fp32_session, fused, check)
        independent = precision.agreement(fp32_session, reference, check)
        kernels = precision.agreement(reference, fused, check)
        rows[label] = {
            "scheme": scheme.record(),
            "top1_agreement": app.top1_agreement,
            "max_probability_difference": app.max_probability_difference,
            "reference_top1_agreement": independent.top1_agreement,
            "reference_max_probability_difference": independent.max_probability_difference,
            "kernel_top1_agreement": kernels.top1_agreement,
            "kernel_max_probability_difference": kernels.max_probability_difference,
            "saturating_operands": len(saturating_operands(model)),
            "bytes": model.ByteSize(),
        }
        models[label] = model
    log(f"{name}: timing {len(models)} models, {rounds} rounds")
    speeds = _speeds(models, check, rounds)
    for label in rows:
        rows[label].update(images_per_s=speeds[label], speed_vs_fp32=speeds[label] / speeds["fp32"])
    return {
        "check_images": len(check),
        "calibration_images": len(calibration),
        "fp32_images_per_s": speeds["fp32"],
        "fp32_bytes": fp32.ByteSize(),
        "schemes": rows,
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"CPU: {result['cpu']['cpu']}, ISA {result['cpu']['isa']}, VNNI {result['cpu']['vnni']}, "
        f"onnxruntime {result['cpu']['onnxruntime']}"
    ]
    for name, network in result["networks"].items():
        lines += [
            "",
            f"{name}: {network['check_images']} check images, fp32 {network['fp32_images_per_s']:.0f} images/s",
            f"{'scheme':26} {'app/fp32':>9} {'maxdiff':>8} {'ref/fp32':>9} {'maxdiff':>8} {'app/ref':>8} "
            f"{'maxdiff':>8} {'saturable':>9} {'img/s':>7} {'vs fp32':>7}",
        ]
        for label, row in network["schemes"].items():
            lines.append(
                f"{label:26} {row['top1_agreement']:9.4f} {row['max_probability_difference']:8.3f} "
                f"{row['reference_top1_agreement']:9.4f} {row['reference_max_probability_difference']:8.3f} "
                f"{row['kernel_top1_agreement']:8.4f} {row['kernel_max_probability_difference']:8.3f} "
                f"{row['saturating_operands']:9d} {row['images_per_s']:7.0f} {row['speed_vs_fp32']:6.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from training.int8_safety import cpu_description

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, from {', '.join(NETWORKS)}")
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / ".cache" / "int8")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[bench_int8] {message}", file=sys.stderr, flush=True)

    args.cache.mkdir(parents=True, exist_ok=True)
    result = {"cpu": cpu_description(), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "networks": {}}
    for name in [n.strip() for n in args.networks.split(",") if n.strip()]:
        result["networks"][name] = measure_network(name, args.cache, args.rounds, log)
    print(render(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
