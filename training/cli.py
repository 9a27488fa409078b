"""`convnet-train`: argument parsing only; the work happens in the training package."""

from __future__ import annotations

import argparse
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is noise to a user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _bool_flag(parser, name: str, default: bool, help_text: str) -> None:
    parser.add_argument(f"--{name}", dest=name.replace("-", "_"), action=argparse.BooleanOptionalAction,
                        default=default, help=help_text)


def _train_parser(subparsers) -> None:
    from training.config import TrainConfig

    d = TrainConfig(data_dir="", out="")
    p = subparsers.add_parser("train", help="fine-tune a backbone on DATA_DIR (one sub-folder per class)")
    p.add_argument("data_dir", metavar="DATA_DIR", nargs="?", default=None)
    p.add_argument("--out", metavar="RUN_DIR", default=None, help="run folder to create")
    p.add_argument("--config", default=None, help="read settings from a config.yaml (flags given here win)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an interrupted run")
    g = p.add_argument_group("network")
    g.add_argument("--backbone", default=d.backbone, help="a name from `convnet-train models`")
    g.add_argument("--weights", default=d.weights, help="imagenet | none | PATH to a .weights.h5 file")
    g.add_argument("--image-size", type=int, default=d.image_size, help="square input size (default: the backbone's)")
    g.add_argument("--dropout", type=float, default=d.dropout)
    g.add_argument("--hidden-units", type=int, default=d.hidden_units, help="optional hidden Dense layer in the head")
    g.add_argument("--hidden-activation", default=d.hidden_activation, choices=("relu", "tanh", "sigmoid"))
    _bool_flag(g, "normalize-polarity", d.normalize_polarity,
               "greyscale networks: invert dark-on-light images inside the model")
    g = p.add_argument_group("stages")
    g.add_argument("--epochs", type=int, default=d.epochs, help="stage 1 epochs (head on a frozen base)")
    g.add_argument("--learning-rate", type=float, default=d.learning_rate)
    g.add_argument("--fine-tune-epochs", type=int, default=d.fine_tune_epochs,
                   help="stage 2 epochs with the top of the base unfrozen (default: 5 for pretrained bases)")
    g.add_argument("--fine-tune-learning-rate", type=float, default=d.fine_tune_learning_rate)
    g.add_argument("--unfreeze", default=d.unfreeze, help="stage 2: fraction (0.25) or number (30) of top base layers")
    g.add_argument("--optimizer", default=d.optimizer, choices=("adam", "sgd", "rmsprop"))
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    g.add_argument("--class-weights", default=d.class_weights, choices=("auto", "on", "off"),
                   help="inverse-frequency class weights; auto: when the largest class exceeds "
                        "--imbalance-ratio times the smallest")
    g.add_argument("--imbalance-ratio", type=float, default=d.imbalance_ratio)
    g.add_argument("--early-stopping-patience", type=int, default=d.early_stopping_patience, help="0 turns it off")
    g.add_argument("--reduce-lr-patience", type=int, default=d.reduce_lr_patience, help="0 turns it off")
    _bool_flag(g, "feature-cache", d.feature_cache, "train a frozen-base head on cached features")
    _bool_flag(g, "distribute", d.distribute, "MirroredStrategy when more than one GPU is visible")
    _bool_flag(g, "tensorboard", d.tensorboard, "write TensorBoard logs to RUN_DIR/logs")
    _bool_flag(g, "deterministic", d.deterministic, "bit-for-bit repeatable runs (slower input pipeline)")
    g = p.add_argument_group("data")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction, help="held-out share per class")
    g.add_argument("--val-dir", default=d.val_dir, help="use this folder for validation instead of a split")
    g.add_argument("--seed", type=int, default=d.seed, help="fixes the split, shuffling and initialisation")
    g.add_argument("--augment", default=d.augment, help="none | light | seed | FILE.yaml")
    g.add_argument("--dataset-name", default=d.dataset_name, help="name recorded in the model (default: folder name)")


def _export_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a training run to one self-describing ONNX file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="destination .onnx file")
    p.add_argument("--test-dir", default=None, help="class folders never used in training: records test accuracy")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |ONNX - Keras| probability difference")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"),
                   help="fp16 for GPUs; int8 by static quantisation calibrated on training images")


def _evaluate_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="accuracy, per-class metrics and a report folder")
    p.add_argument("source", metavar="RUN_DIR|MODEL.onnx")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--report", default=None, help="report folder (default: RUN_DIR/report or ./report-NAME)")
    p.add_argument("--top-k", type=int, default=5)


def _augment_preview_parser(subparsers) -> None:
    p = subparsers.add_parser("augment-preview", help="write a grid of augmented variants of IMAGE")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--augment", default="seed", help="none | light | seed | FILE.yaml (default: seed)")
    p.add_argument("--out", required=True, help="grid PNG to write")
    p.add_argument("--count", type=int, default=15, help="number of variants (default 15)")
    p.add_argument("--size", type=int, default=192, help="tile size in pixels")
    p.add_argument("--seed", type=int, default=0)


def _pretrained_parser(subparsers) -> None:
    p = subparsers.add_parser("pretrained", help="export a stock 1000-class ImageNet classifier (needs the download)")
    p.add_argument("name", metavar="NAME", help="a keras.applications network from `convnet-train models`")
    p.add_argument("--out", required=True, help="destination .onnx file, e.g. exported_models/NAME-imagenet.onnx")


def _model_parsers(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the networks with input sizes and parameter counts")
    p.add_argument("--no-params", action="store_true", help="skip building the networks to count parameters")
    p = subparsers.add_parser("summary", help="print a network's layer table")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--classes", type=int, default=None, help="number of classes (default: 1000, or 10 for digits nets)")
    p.add_argument("--include-top", action="store_true", help="the network's original classifier top")
    p.add_argument("--image-size", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-train", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _train_parser(subparsers)
    _export_parser(subparsers)
    _evaluate_parser(subparsers)
    _augment_preview_parser(subparsers)
    _model_parsers(subparsers)
    _pretrained_parser(subparsers)
    return parser


def _train_config(args: argparse.Namespace, argv: list[str]):
    """Defaults < --config file < flags given on the command line."""
    from training.config import TrainConfig

    values = {k: v for k, v in vars(args).items() if k not in ("command", "config", "resume")}
    if args.config:
        from_file = TrainConfig.load(args.config)
        given = {action.dest for action in _train_actions() if any(opt in argv for opt in action.option_strings)}
        for key, value in vars(from_file).items():
            if key in values and key not in given and not (key in ("data_dir", "out") and values[key]):
                values[key] = value
    if not values.get("data_dir") or not values.get("out"):
        raise SystemExit("convnet-train train: error: DATA_DIR and --out are required (or --resume RUN_DIR)")
    values.pop("augmentation", None)
    return TrainConfig(**values)


def _train_actions():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # noqa: SLF001 - argparse has no public API
    return train._actions  # noqa: SLF001


def run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.command == "train":
        from training.trainer import resume, train

        if args.resume:
            resume(args.resume)
        else:
            train(_train_config(args, argv))
    elif args.command == "export":
        from training.export import export_run

        export_run(args.run_dir, args.out, test_dir=args.test_dir, tolerance=args.tolerance, precision=args.precision)
    elif args.command == "evaluate":
        from training.evaluate import evaluate, format_evaluation

        print(format_evaluation(evaluate(args.source, args.data_dir, args.report, args.top_k)))
    elif args.command == "pretrained":
        from training.pretrained import export_pretrained

        export_pretrained(args.name, args.out)
    elif args.command == "models":
        from training.summary import format_models_table, list_models

        print(format_models_table(list_models(with_params=not args.no_params)))
    elif args.command == "summary":
        from training.summary import summary_text

        print(summary_text(args.name, classes=args.classes, include_top=args.include_top, image_size=args.image_size))
    elif args.command == "augment-preview":
        from training.augment import resolve_augment
        from training.augment_preview import preview_grid

        path = preview_grid(args.image, resolve_augment(args.augment), args.out, args.count, args.size, args.seed)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from training.data import DatasetError
    from training.export import ExportError
    from training.gradcam import UnsupportedHeadError
    from training.registry import UnknownBackboneError
    from training.trainer import NothingToResumeError
    from training.weights import WeightsUnavailableError

    from convnet_common.imaging import ImageReadError

    expected = (DatasetError, ExportError, UnsupportedHeadError, UnknownBackboneError, WeightsUnavailableError,
                NothingToResumeError, ImageReadError, ValueError)
    try:
        return run(args, argv)
    except expected as error:
        print(f"convnet-train: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = getattr(args, "out", None) or getattr(args, "resume", None)
        hint = f"; continue with: convnet-train train --resume {where}" if args.command == "train" and where else ""
        print(f"\nconvnet-train: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
