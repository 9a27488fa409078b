"""The `train` command's options: the longest list of `convnet-train` by far, so kept apart.

training.cli_parsers builds the whole command line and hands its help formatter in here.
Only argparse and training.config (plain data, for the defaults): building this parser
imports no TensorFlow, so `convnet-train train --help` and a refused command line stay
instant.
"""

from __future__ import annotations

import argparse


def bool_flag(parser, name: str, default: bool, help_text: str) -> None:
    """--name / --no-name, so a config file's True can be turned off from the command line."""
    parser.add_argument(
        f"--{name}", dest=name.replace("-", "_"), action=argparse.BooleanOptionalAction, default=default, help=help_text
    )


def add_train_parser(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """The `train` sub-command and its option groups (network, stages, data), defaults from TrainConfig."""
    from training.config import TrainConfig

    d = TrainConfig(data_dir="", out="")
    p = subparsers.add_parser(
        "train",
        help="train a network on DATA_DIR (one sub-folder per class)",
        description="Train a network on DATA_DIR, one sub-folder of images per class. Pretrained "
        "(keras.applications) networks are fine-tuned in two stages: the new head on the frozen base, "
        "then the top of the base; networks built from scratch train whole. The run folder gets the best "
        "checkpoint, the history, the full configuration and a report on the validation images.",
        epilog="examples:\n"
        "  convnet-train train photos/ --backbone mobilenet_v2 --out runs/pets\n"
        "  convnet-train train digits/ --backbone lenet5 --augment none --epochs 20 --out runs/digits\n"
        "  convnet-train train --resume runs/pets            (after Ctrl+C, SIGTERM or a crash)\n"
        "  convnet-train train photos/ --out runs/pets --progress jsonl   (for programs)",
        formatter_class=formatter_class,
    )
    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        nargs="?",
        default=None,
        help="class folders to train on (not needed with --resume)",
    )
    p.add_argument("--out", metavar="RUN_DIR", default=None, help="run folder to create")
    p.add_argument(
        "--config", default=None, metavar="FILE.yaml", help="read settings from a config.yaml (flags given here win)"
    )
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an interrupted run")
    p.add_argument(
        "--progress",
        default="text",
        choices=("text", "jsonl"),
        help="jsonl: stdout carries only progress events, one JSON object per line, for programs "
        "(docs/training-progress.md); all other output goes to stderr",
    )
    g = p.add_argument_group("network")
    g.add_argument("--backbone", default=d.backbone, metavar="NAME", help="a network from `convnet-train models`")
    g.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|none|PATH",
        help="starting weights: ImageNet's, random, or a .weights.h5 file (default: imagenet for "
        "keras.applications networks, none for those built from scratch)",
    )
    g.add_argument(
        "--image-size",
        type=int,
        default=d.image_size,
        metavar="PIXELS",
        help="square input size (default: the network's)",
    )
    g.add_argument("--dropout", type=float, default=d.dropout, help="dropout rate before the last layer of the head")
    g.add_argument(
        "--hidden-units",
        type=int,
        default=d.hidden_units,
        metavar="N",
        help="add a hidden Dense layer of N units to the head (0: none)",
    )
    g.add_argument(
        "--hidden-activation",
        default=d.hidden_activation,
        choices=("relu", "tanh", "sigmoid"),
        help="activation of that hidden layer",
    )
    bool_flag(
        g,
        "normalize-polarity",
        d.normalize_polarity,
        "greyscale networks: invert dark-on-light images inside the model",
    )
    g = p.add_argument_group("stages")
    g.add_argument(
        "--epochs",
        type=int,
        default=d.epochs,
        help="stage 1: the new head on the frozen base, or the whole network when built from scratch",
    )
    g.add_argument("--learning-rate", type=float, default=d.learning_rate, metavar="RATE", help="stage 1 learning rate")
    g.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=d.fine_tune_epochs,
        metavar="EPOCHS",
        help="stage 2 epochs with the top of the base unfrozen (default: 5 for pretrained bases)",
    )
    g.add_argument(
        "--fine-tune-learning-rate",
        type=float,
        default=d.fine_tune_learning_rate,
        metavar="RATE",
        help="stage 2 learning rate",
    )
    g.add_argument(
        "--unfreeze",
        default=d.unfreeze,
        metavar="SHARE|COUNT",
        help="stage 2: fraction (0.25) or number (30) of top base layers",
    )
    g.add_argument("--optimizer", default=d.optimizer, choices=("adam", "sgd", "rmsprop"), help="sgd uses momentum 0.9")
    g.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        metavar="N",
        help="images per training step on each replica (device)",
    )
    g.add_argument(
        "--label-smoothing",
        type=float,
        default=d.label_smoothing,
        metavar="EPSILON",
        help="soften the one-hot targets (0: off)",
    )
    g.add_argument(
        "--class-weights",
        default=d.class_weights,
        choices=("auto", "on", "off"),
        help="inverse-frequency class weights; auto: when the largest class exceeds "
        "--imbalance-ratio times the smallest",
    )
    g.add_argument(
        "--imbalance-ratio", type=float, default=d.imbalance_ratio, metavar="RATIO", help="see --class-weights auto"
    )
    g.add_argument(
        "--early-stopping-patience",
        type=int,
        default=d.early_stopping_patience,
        metavar="EPOCHS",
        help="stop a stage after this many epochs without better validation accuracy (0: never)",
    )
    g.add_argument(
        "--reduce-lr-patience",
        type=int,
        default=d.reduce_lr_patience,
        metavar="EPOCHS",
        help="divide the learning rate by 5 after this many epochs without progress (0: never)",
    )
    bool_flag(
        g,
        "feature-cache",
        d.feature_cache,
        "run a pretrained base's frozen part once: the head (and, fine-tuning, the unfrozen top) trains on its "
        "cached outputs without augmentation; with augmentation only validation is scored on them",
    )
    g.add_argument(
        "--mixed-precision",
        default=d.mixed_precision,
        choices=("auto", "on", "off"),
        help="float16 arithmetic with float32 weights; auto: on a GPU with tensor cores (compute capability 7.0+), "
        "never on a CPU (slower there); the run's files are float32 either way",
    )
    bool_flag(g, "distribute", d.distribute, "MirroredStrategy when more than one GPU is visible")
    g.add_argument(
        "--cluster",
        default=d.cluster,
        metavar="HOST:PORT,HOST:PORT",
        help="train on several machines (MultiWorkerMirroredStrategy); the same list on every worker, "
        "task 0 (the chief) writes the run folder (default: TF_CONFIG, or this machine alone)",
    )
    g.add_argument("--task-index", type=int, default=d.task_index, metavar="I", help="this worker's place in --cluster")
    g.add_argument(
        "--cluster-timeout",
        type=float,
        default=d.cluster_timeout,
        metavar="SECONDS",
        help="how long a worker waits for all the others, at the start and after one was lost, "
        "before the job ends with a message (0: forever; default %(default)g)",
    )
    bool_flag(
        g,
        "scale-learning-rate",
        d.scale_learning_rate,
        "with several replicas, multiply the learning rates by their number (--batch-size is per replica)",
    )
    bool_flag(g, "tensorboard", d.tensorboard, "write TensorBoard logs to RUN_DIR/logs")
    bool_flag(g, "deterministic", d.deterministic, "bit-for-bit repeatable runs (slower input pipeline)")
    g = p.add_argument_group("data")
    g.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        metavar="SHARE",
        help="share of each class held out for validation",
    )
    g.add_argument("--val-dir", default=d.val_dir, metavar="DIR", help="use these class folders for validation instead")
    g.add_argument("--seed", type=int, default=d.seed, help="fixes the split, shuffling and initialisation")
    g.add_argument(
        "--augment",
        default=d.augment,
        metavar="none|light|seed|FILE.yaml",
        help="random changes to training images (see `convnet-train augment-preview`)",
    )
    g.add_argument(
        "--dataset-name",
        default=d.dataset_name,
        metavar="NAME",
        help="name recorded in the model (default: the folder name, or its parent's for a generic name such as train)",
    )
