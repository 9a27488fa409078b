"""Every command and option of `convnet-train`, and the help text a user reads first.

Only argparse: the parsers are built without importing TensorFlow or anything that
trains (the train options read their defaults from training.config.TrainConfig, which is
plain data), so `--help`, a refused command line and `convnet-train models` stay instant.
Kept apart from training.cli, which runs a parsed command and reports how it ended;
DESCRIPTION and EPILOG are the program's first screen, not this docstring.
"""

from __future__ import annotations

import argparse

from training.cli_train_parser import add_train_parser

DESCRIPTION = """\
Train convolutional image classifiers on folders of labelled images and export them as
single ONNX files for the ConvNet Studio app (drag images onto its window to classify
them and see where the network looked).

A data folder holds one sub-folder per class: DATA_DIR/cat/*.jpg, DATA_DIR/dog/*.jpg."""

EPILOG = """\
typical session:
  convnet-train models                                  which networks there are
  convnet-train train photos/ --backbone mobilenet_v2 --out runs/pets
  convnet-train evaluate runs/pets test-photos/         accuracy and a report folder
  convnet-train export runs/pets --out pets.onnx        the model file the app opens

`convnet-train COMMAND --help` describes each command's options."""


class CommandLineError(SystemExit):
    """argparse refused the command line (exit 2, message already on stderr); carries the
    message for the `--progress jsonl` error event."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        try:
            super().error(message)  # usage and message to stderr, as ever
        except SystemExit:
            raise CommandLineError(message) from None


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps prose to the terminal but keeps example blocks (indented lines) as written,
    and shows each option's default where its help does not already say it."""

    def _fill_text(self, text, width, indent):
        import textwrap

        blocks = []
        for block in text.split("\n\n"):
            if any(line.startswith(" ") for line in block.splitlines()):
                blocks.append(textwrap.indent(block, indent))
            else:
                blocks.append(
                    textwrap.fill(" ".join(block.split()), width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n\n".join(blocks)

    def _get_help_string(self, action):
        text = action.help or ""
        if isinstance(action, argparse.BooleanOptionalAction):  # "(default: True)" reads badly
            text = text.replace(" (default: %(default)s)", "")
            return text + (" (on by default)" if action.default else "")
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _export_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a training run to one self-describing ONNX file",
        description="Convert a training run to one ONNX file with the preprocessing, the labels and the "
        "activation map inside, as the app and convnet-classify open it. The file is checked against "
        "Keras on the validation images; if they disagree, nothing is written.",
        epilog="example:\n  convnet-train export runs/pets --out exported_models/pets.onnx --test-dir test-photos/",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished (or interrupted) training run folder")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="the model file to write")
    p.add_argument(
        "--fine-map",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a finer LayerCAM activation map at an earlier layer (cam_fine) when the network names one",
    )
    p.add_argument(
        "--test-dir",
        default=None,
        metavar="DIR",
        help="class folders never used in training: their accuracy is recorded in the model",
    )
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |ONNX - Keras| probability difference")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "fp16", "int8"),
        help="fp16 for GPUs; int8 by static quantisation calibrated on training images",
    )
    p.add_argument(
        "--unknown-accept-rate",
        type=float,
        default=0.95,
        metavar="RATE",
        help="share of validation images the 'unknown' threshold accepts (0.5-1); higher accepts more "
        "unusual images of the known classes and more images of nothing the model knows",
    )


def _evaluate_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy, per-class metrics and a report folder",
        description="Score a training run or an exported .onnx file on DATA_DIR's class folders: accuracy, "
        "top-k accuracy, per-class precision, recall and F1, and a report folder (confusion matrix, "
        "every prediction as CSV, a sheet of the mistakes, training curves). Each evaluation gets a "
        "new report folder; the run's own validation report (RUN_DIR/report) is never overwritten.",
        epilog="example:\n  convnet-train evaluate runs/pets test-photos/     report in runs/pets/evaluations/test-photos",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("source", metavar="RUN_DIR|MODEL.onnx", help="a training run folder or an exported model")
    p.add_argument("data_dir", metavar="DATA_DIR", help="class folders with images the model should recognise")
    p.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="report folder (default: a new RUN_DIR/evaluations/DATA_DIR_NAME, or ./report-MODEL for "
        "an .onnx file; -2, -3, ... when taken)",
    )
    p.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="also count a hit when the true class is among the top K"
    )


def _augment_preview_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "augment-preview",
        help="write a grid of augmented variants of IMAGE",
        description="Show what the network sees during training: IMAGE under the augmentation, as a grid.",
        epilog="example:\n  convnet-train augment-preview photo.jpg --augment seed --out grid.png",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="a picture file")
    p.add_argument("--augment", default="seed", metavar="none|light|seed|FILE.yaml", help="the augmentation to show")
    p.add_argument("--out", required=True, metavar="FILE.png", help="grid PNG to write")
    p.add_argument("--count", type=int, default=15, help="number of variants")
    p.add_argument("--size", type=int, default=192, metavar="PIXELS", help="tile size")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same variants")


def _pretrained_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrained",
        help="export a stock 1000-class ImageNet classifier (needs the download)",
        description="Export a keras.applications network with its original ImageNet top and the 1,000 class "
        "names, ready for the app. Needs Keras's download of the weights (or the file in its cache).",
        epilog="example:\n  convnet-train pretrained mobilenet_v2 --out exported_models/mobilenet_v2-imagenet.onnx",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="a keras.applications network from `convnet-train models`")
    p.add_argument(
        "--out", required=True, metavar="FILE.onnx", help="destination, e.g. exported_models/NAME-imagenet.onnx"
    )


def _model_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the networks: input sizes, parameters, speed",
        description="List the networks --backbone accepts, with their input size, parameter count and "
        "multiply-adds per image (a speed hint that does not depend on the machine).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--no-params", action="store_true", help="leave out the parameter and multiply-add columns")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document for programs instead of the table: per network its name, ImageNet "
        "weights or not, default --weights, input size, parameters, multiply-adds and description",
    )
    p = subparsers.add_parser(
        "summary",
        help="print a network's layer table",
        description="Print a network's layers with output shapes and parameter counts: by default the classifier "
        "`train` builds (preprocessing, base, head), with --include-top the network as published.",
        epilog="example:\n  convnet-train summary vgg16 --include-top",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="a name from `convnet-train models`")
    p.add_argument("--classes", type=int, default=None, help="number of classes (default: 1000, or 10 for digits nets)")
    p.add_argument("--include-top", action="store_true", help="the network's original classifier top")
    p.add_argument(
        "--image-size", type=int, default=None, metavar="PIXELS", help="square input size (default: the network's)"
    )


def _adopt_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "adopt",
        help="make a ConvNet Studio model from another tool's image classifier",
        description="Adopt an image classifier made elsewhere (an ONNX file, a Keras .keras/.h5 file, a TensorFlow "
        "SavedModel folder, a Teachable Machine or Lobe export): put the uint8 RGB input and the preprocessing in "
        "front of its graph, a softmax behind logits, and the labels and settings in the metadata. What the source "
        "reveals is used and printed; the rest comes from the flags; anything still unknown stops with the flag to "
        "give. The adopted file is checked against the original on test images before it is written.",
        epilog="examples:\n"
        "  convnet-train adopt resnet18.onnx --out resnet18-adopted.onnx --mean 0.485 0.456 0.406 "
        "--std 0.229 0.224 0.225 --resize shorter-side-crop\n"
        "  convnet-train adopt model.onnx --inspect          what is known and what is missing\n"
        "  (see docs/adopting-models.md)",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help="the original model file or export folder (never modified)")
    p.add_argument("--out", default=None, metavar="MODEL.onnx", help="the adopted model file to write")
    p.add_argument("--labels", default=None, metavar="FILE", help="class names, one a line (or '0 name' lines)")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default=None, help="the original input's layout")
    p.add_argument("--mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"), help="0-1 units")
    p.add_argument(
        "--std",
        type=float,
        nargs=3,
        default=None,
        metavar=("R", "G", "B"),
        help="0-1 units: x = (pixel/255 - mean)/std",
    )
    p.add_argument("--channel-order", choices=("rgb", "bgr"), default=None, help="what the original expects")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"), help="for dynamic inputs")
    p.add_argument(
        "--resize",
        choices=("stretch", "shorter-side-crop"),
        default=None,
        help="how the app fits an image to the input (default: stretch)",
    )
    p.add_argument(
        "--crop-fraction", type=float, default=None, metavar="F", help="with shorter-side-crop (default: 0.875)"
    )
    p.add_argument("--output", choices=("logits", "probabilities"), default=None, help="what the original gives")
    p.add_argument("--inspect", action="store_true", help="print what is detected and missing; write no model")
    p.add_argument("--json", action="store_true", help="with --inspect: one JSON object for programs")
    p.add_argument("--preview-onnx", default=None, metavar="PATH", help="with --inspect: write the original graph here")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="convnet-train", description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    add_train_parser(subparsers, _HelpFormatter)
    _export_parser(subparsers)
    _evaluate_parser(subparsers)
    _augment_preview_parser(subparsers)
    _model_parsers(subparsers)
    _pretrained_parser(subparsers)
    _adopt_parser(subparsers)
    return parser


def train_options() -> list[argparse.Action]:
    """The `train` command's options: which flags a command line gave, over a --config file."""
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # noqa: SLF001 - argparse has no public API
    return train._actions  # noqa: SLF001 - argparse keeps a parser's options only there
