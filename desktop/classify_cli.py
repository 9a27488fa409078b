"""convnet-classify: classify image files and folders from the command line, as CSV.

Exit status: 0 all files classified, 1 some files could not be read, 2 usage error or
unusable model. Messages go to stderr as one line each; CSV goes to stdout or --csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from convnet_common.atomic import atomic_path
from desktop.core.batch import classify_paths
from desktop.core.classifier import Classifier, Prediction
from desktop.core.model import PROVIDER_CHOICES, LoadedModel, ModelLoadError, load_model
from desktop.core.paths import default_model_path

CSV_COLUMNS = ("path", "label", "confidence", "top_k", "error")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convnet-classify",
        description="Classify images (files or folders, searched recursively) with a ConvNet Studio ONNX model.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    parser.add_argument("--model", help=f"ONNX model file (default: the bundled {default_model_path().name})")
    parser.add_argument("--top-k", type=_positive_int, default=5, help="classes listed per image (default 5)")
    parser.add_argument("--csv", metavar="OUT", help="write the CSV to this file instead of stdout")
    parser.add_argument("--provider", choices=PROVIDER_CHOICES, default="auto", help="execution provider")
    parser.add_argument("--batch-size", type=_positive_int, default=16, help="images per inference run")
    return parser


def prediction_row(prediction: Prediction) -> list[str]:
    """One CSV row: the error column is empty exactly when the label columns are filled."""
    path = str(prediction.path) if prediction.path is not None else ""
    if prediction.error is not None:
        return [path, "", "", "", prediction.error]
    label, confidence = prediction.top_k[0]
    top_k = json.dumps([[name, round(probability, 4)] for name, probability in prediction.top_k])
    return [path, label, f"{confidence:.4f}", top_k, ""]


def write_predictions(
    stream: TextIO, classifier: Classifier, args: argparse.Namespace
) -> tuple[int, int]:
    """Stream rows as they are produced; return (images classified, files failed)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    classified = failed = 0
    for prediction in classify_paths(classifier, args.paths, top_k=args.top_k, batch_size=args.batch_size):
        writer.writerow(prediction_row(prediction))
        if prediction.error is None:
            classified += 1
        else:
            failed += 1
    return classified, failed


def _open_model(args: argparse.Namespace) -> LoadedModel:
    model_path = args.model or default_model_path()
    if args.model is None and not default_model_path().exists():
        raise ModelLoadError(f"no --model given and the bundled model is missing: {model_path}")
    return load_model(model_path, provider=args.provider)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = _open_model(args)
    except ModelLoadError as error:
        print(f"convnet-classify: error: {error}", file=sys.stderr)
        return 2
    for notice in model.info.notices:
        print(f"convnet-classify: note: {notice}", file=sys.stderr)
    classifier = Classifier(model, top_k=args.top_k)
    try:
        if args.csv:
            with atomic_path(args.csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
                classified, failed = write_predictions(handle, classifier, args)
        else:
            classified, failed = write_predictions(sys.stdout, classifier, args)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("convnet-classify: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        print(f"convnet-classify: error: cannot write output: {error}", file=sys.stderr)
        return 2
    print(
        f"classified {classified} images, {failed} failed, model {model.info.name}, "
        f"provider {model.provider_in_use}",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
