"""`convnet-train`: argument parsing only; the work happens in the training package."""

from __future__ import annotations

import argparse
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is noise to a user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _train_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="fine-tune a backbone on DATA_DIR (one sub-folder per class)")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--backbone", default="mobilenet_v2", help="network from the registry (default: mobilenet_v2)")
    p.add_argument("--weights", default="imagenet", help="imagenet | none | PATH to a .weights.h5 file")
    p.add_argument("--image-size", type=int, default=None, help="square input size (default: the backbone's)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--val-fraction", type=float, default=0.2, help="held-out share per class (default 0.2)")
    p.add_argument("--val-dir", default=None, help="use this folder for validation instead of a split")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--augment", default="light", help="none | light | seed | FILE.yaml (default: light)")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--hidden-units", type=int, default=0, help="optional hidden Dense layer in the head")
    p.add_argument(
        "--normalize-polarity",
        action="store_true",
        help="greyscale networks: invert dark-on-light images inside the model",
    )
    p.add_argument("--dataset-name", default=None, help="name recorded in the model (default: folder name)")
    p.add_argument("--out", required=True, metavar="RUN_DIR")


def _export_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a training run to one self-describing ONNX file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="destination .onnx file")
    p.add_argument("--test-dir", default=None, help="class folders never used in training: records test accuracy")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |ONNX - Keras| probability difference")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-train", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _train_parser(subparsers)
    _export_parser(subparsers)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "train":
        from training.trainer import TrainConfig, train

        options = {k: v for k, v in vars(args).items() if k != "command"}
        train(TrainConfig(**options))
    elif args.command == "export":
        from training.export import export_run

        export_run(args.run_dir, args.out, test_dir=args.test_dir, tolerance=args.tolerance)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.data import DatasetError
    from training.export import ExportError
    from training.gradcam import UnsupportedHeadError
    from training.registry import UnknownBackboneError
    from training.weights import WeightsUnavailableError

    expected = (DatasetError, ExportError, UnsupportedHeadError, UnknownBackboneError, WeightsUnavailableError)
    try:
        return run(args)
    except expected as error:
        print(f"convnet-train: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convnet-train: interrupted; the last best checkpoint is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
