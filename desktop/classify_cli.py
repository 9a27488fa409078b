"""convnet-classify: classify image files and folders from the command line.

Exit status: 0 all files classified, 1 some files could not be read (or sorted), 2 usage
error or unusable model. Messages go to stderr as one line each: every file that could not
be classified gets `convnet-classify: PATH: what is wrong` (the CSV's error column says the
same). Every line goes through convnet_common.terminal_text first, so a file name, class
name or model text with control characters shows them as `\\x1b`, `\\n`, … and cannot
retitle or recolour the terminal, or split a line in two (so does the CSV on stdout when
stdout is a terminal). Names that start with a dash go after `--`. Each result format in
desktop.core.exporters is an option `--KIND OUT` (--csv, --json); with none of them the
CSV goes to stdout, and stdout stays quiet otherwise. Formats that can be streamed (CSV)
are written row by row as images are classified; for a labelled folder they carry the
`true_label` column, as the Batch tab's exports do. --sort-into copies (or --move moves)
the images into DEST/<class>/ with a log for undo. A model with an unknown score adds
`unknown` (true/false) and `unknown_score` to every format (the columns are there, empty,
for other models too), and --sort-into puts its unknown images into DEST/_unknown/.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from convnet_common.atomic import atomic_path
from convnet_common.terminal_text import SafeArgumentParser, terminal_safe
from desktop.core import ray_classify
from desktop.core.batch import BatchResult, run_batch
from desktop.core.classifier import Classifier
from desktop.core.exporters import EXPORTERS, STDOUT_FORMAT, ExportContext, RowSink
from desktop.core.labelled import AccuracyTally, FolderLabels, detect_labelled_folder
from desktop.core.model import LoadedModel, ModelLoadError, load_model
from desktop.core.paths import default_model_path
from desktop.core.providers import PROVIDER_CHOICES
from desktop.core.settings import Settings
from desktop.core.sorting import UNKNOWN_DIR, UNSURE_DIR, sort_into_folders


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = SafeArgumentParser(
        prog="convnet-classify",
        description="Classify images (files or folders, searched recursively) with a ConvNet Studio ONNX model.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files or folders (put names that start with '-' after '--')",
    )
    parser.add_argument("--model", help=f"ONNX model file (default: the bundled {default_model_path().name})")
    parser.add_argument("--top-k", type=_positive_int, default=5, help="classes listed per image (default 5)")
    for exporter in EXPORTERS:
        parser.add_argument(f"--{exporter.kind}", metavar="OUT", help=exporter.cli_help)
    parser.add_argument("--provider", choices=PROVIDER_CHOICES, default="auto", help="execution provider")
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="images per inference run (default: measured for the model on this machine)",
    )
    parser.add_argument(
        "--sort-into",
        metavar="DEST",
        help=f"copy each image into DEST/<class>/ after classifying (images the model calls unknown: DEST/{UNKNOWN_DIR}/)",
    )
    parser.add_argument("--move", action="store_true", help="with --sort-into: move instead of copy (undoable)")
    parser.add_argument(
        "--threshold",
        type=_fraction,
        default=0.0,
        help=f"with --sort-into: images below this confidence (0-1) go to DEST/{UNSURE_DIR}/",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const=ray_classify.LOCAL,
        type=_ray_address,
        metavar="ADDRESS",
        help="classify on a Ray cluster (auto, ray://HOST:PORT or HOST:PORT; none: a local Ray instance)."
        " Needs pip install 'convnet-studio[cluster]'",
    )
    return parser


def _ray_address(text: str) -> str:
    try:
        return ray_classify.check_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def say(line: str) -> None:
    """One line on stderr, with whatever a name or label brought in shown escaped (see the
    module docstring): the line stays one line and the terminal does nothing it says."""
    print(terminal_safe(line), file=sys.stderr, flush=True)


def failure_line(result: BatchResult) -> str:
    """`convnet-classify: PATH: what is wrong`, on one line, for a file that was not classified."""
    reason = result.error or "no prediction"
    prefix = f"{result.path}: "
    if reason.startswith(prefix):  # the loader's messages already name the file
        reason = reason[len(prefix) :]
    return terminal_safe(f"convnet-classify: {result.path}: {' '.join(reason.split())}")


def write_predictions(
    sinks: list[RowSink],
    classifier: Classifier,
    args: argparse.Namespace,
    keep: list[BatchResult] | None = None,
    unknown: list[int] | None = None,
) -> tuple[int, int]:
    """Hand each result to the streamed outputs as it is produced, each failure as a line on
    stderr; return (images classified, files failed). `unknown[0]` counts the unknown images."""
    classified = failed = 0
    if getattr(args, "ray", None) is not None:  # the same rows, classified on a Ray cluster
        batches = ray_classify.classify_on_ray(
            classifier.model,
            args.paths,
            address=args.ray,
            top_k=args.top_k,
            batch_size=args.batch_size,
            provider=args.provider,
        )
    else:
        batches = run_batch(classifier, args.paths, top_k=args.top_k, batch_size=args.batch_size)
    for results in batches:
        for result in results:
            for sink in sinks:
                sink(result)
            if keep is not None:
                keep.append(result)
            if result.ok:
                classified += 1
                if result.unknown and unknown is not None:
                    unknown[0] += 1
            else:
                failed += 1
                say(failure_line(result))
    return classified, failed


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Keep file descriptor 2 for our own lines while images are decoded.

    libjpeg and libpng, under OpenCV, print their own warnings ("Corrupt JPEG data: ...",
    "libpng error: ...") straight to descriptor 2, while each bad file already gets its
    one line from us. Descriptor 2 goes to the null device meanwhile; a sys.stderr that
    wrote to it writes to a copy of the real one instead.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    own = sys.stderr
    try:
        uses_descriptor_2 = own.fileno() == 2
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        uses_descriptor_2 = False
    replacement = None
    if uses_descriptor_2:
        replacement = open(
            saved,
            "w",
            encoding=getattr(own, "encoding", None) or "utf-8",
            errors="backslashreplace",
            buffering=1,
            closefd=False,
        )
        sys.stderr = replacement
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        if replacement is not None:
            replacement.flush()
        os.dup2(saved, 2)
        sys.stderr = own
        if replacement is not None:
            replacement.close()
        os.close(null)
        os.close(saved)


def _open_model(args: argparse.Namespace) -> LoadedModel:
    model_path = args.model or default_model_path()
    if args.model is None and not default_model_path().exists():
        raise ModelLoadError(f"no --model given and the bundled model is missing: {model_path}")
    model = load_model(model_path, provider=args.provider, batch_sizes=[args.batch_size] if args.batch_size else [])
    if model.has_unknown_score:  # the threshold set in the app (Model -> Unknown threshold…) applies here too
        model.set_threshold_override(Settings.load().unknown_threshold(model.info.sha256))
    return model


def _sort(results: list[BatchResult], args: argparse.Namespace) -> int:
    """Sort into folders and report on stderr; return how many files could not be placed."""
    report = sort_into_folders(results, args.sort_into, threshold=args.threshold, move=args.move)
    verb = "moved" if args.move else "copied"
    for path, reason in report.failed:
        say(f"convnet-classify: could not sort {path}: {reason}")
    undo = f" (undo: convnet-undo-sort {shlex.quote(str(args.sort_into))})" if args.move else ""
    say(f"{verb} {len(report.placed)} images into {args.sort_into}, log {report.log_path}{undo}")
    if report.in_place or report.left_in_dest:
        # A DEST inside the source folder: files it already holds are not input, and are said so.
        say(
            f"left {len(report.in_place) + len(report.left_in_dest)} files already in {args.sort_into} where they were"
            f" ({len(report.in_place)} in their class folder, {len(report.left_in_dest)} in another)"
        )
    return len(report.failed)


class _TerminalRows:
    """stdout when it is a terminal: each row the CSV writer hands over (one write per row)
    is shown with terminal_safe, as `ls` shows odd names on a terminal; piped or redirected,
    stdout gets the exact names."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        ending = "\n" if text.endswith("\n") else ""
        return self._stream.write(terminal_safe(text[: len(text) - len(ending)]) + ending)


def _stdout() -> object:
    try:
        return _TerminalRows(sys.stdout) if sys.stdout.isatty() else sys.stdout
    except (AttributeError, ValueError):
        return sys.stdout


def _outputs(args: argparse.Namespace) -> dict[str, str]:
    """{format kind: output file} for every --KIND OUT given."""
    return {e.kind: getattr(args, e.kind) for e in EXPORTERS if getattr(args, e.kind)}


def _classify(
    classifier: Classifier,
    args: argparse.Namespace,
    context: ExportContext,
    keep: list[BatchResult] | None,
    unknown: list[int],
) -> tuple[int, int]:
    """Stream the streamable formats (to their files, or the default one to stdout when no
    file is named); (classified, failed)."""
    outputs = _outputs(args)
    with ExitStack() as stack:
        sinks: list[RowSink] = []
        for exporter in EXPORTERS:
            if exporter.stream is None or exporter.kind not in outputs:
                continue
            # surrogateescape: a file name that is not valid UTF-8 is written back as its own
            # bytes, as it is on stdout, rather than stopping the run.
            tmp = stack.enter_context(atomic_path(outputs[exporter.kind]))
            handle = stack.enter_context(open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline=""))
            sinks.append(exporter.stream(handle, context))
        if not outputs:
            sinks.append(STDOUT_FORMAT.stream(_stdout(), context))
        counts = write_predictions(sinks, classifier, args, keep, unknown)
    sys.stdout.flush()
    return counts


def _write_whole_files(args: argparse.Namespace, results: list[BatchResult], context: ExportContext) -> None:
    """The formats that are not streamed (JSON), once every result is in."""
    outputs = _outputs(args)
    for exporter in EXPORTERS:
        if exporter.stream is None and exporter.kind in outputs:
            exporter.write(outputs[exporter.kind], results, context)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.move or args.threshold) and not args.sort_into:
        parser.error("--move and --threshold need --sort-into DEST")
    try:
        if args.ray is not None:  # before any output: Ray missing or nothing at the address is one line
            ray_classify.import_ray()
            ray_classify.check_reachable(args.ray)
    except ray_classify.ClusterError as error:
        say(f"convnet-classify: error: {error}")
        return 2
    try:
        model = _open_model(args)
    except ModelLoadError as error:
        say(f"convnet-classify: error: {error}")
        return 2
    for notice in model.info.notices:
        say(f"convnet-classify: note: {notice}")
    classifier = Classifier(model, top_k=args.top_k)
    # One folder whose sub-folders name the classes is labelled data: report its accuracy.
    labels: FolderLabels | None = (
        detect_labelled_folder(args.paths[0], model.info.labels) if len(args.paths) == 1 else None
    )
    context = ExportContext(model=str(model.info.path), truth=labels)
    whole_files = any(e.stream is None and e.kind in _outputs(args) for e in EXPORTERS)
    keep: list[BatchResult] | None = [] if (whole_files or args.sort_into or labels) else None
    sort_failed = 0
    unknown = [0]
    started = time.perf_counter()
    try:
        with quiet_native_stderr():
            classified, failed = _classify(classifier, args, context, keep, unknown)
        elapsed = time.perf_counter() - started
        if keep is not None:
            _write_whole_files(args, keep, context)
        if args.sort_into and keep is not None:
            sort_failed = _sort(keep, args)
    except KeyboardInterrupt:
        print("convnet-classify: interrupted", file=sys.stderr)
        return 130
    except ray_classify.ClusterError as error:  # nothing was written: the outputs are atomic
        say(f"convnet-classify: error: {error}")
        return 2
    except OSError as error:
        say(f"convnet-classify: error: cannot write output: {error}")
        return 2
    except UnicodeEncodeError as error:  # a file name that is not valid UTF-8, in a JSON or log file
        bad = error.object[error.start : error.end] if isinstance(error.object, str) else "?"
        print(
            f"convnet-classify: error: cannot write output: a file name is not valid UTF-8 "
            f"({bad.encode('utf-8', 'surrogateescape')!r} cannot be stored as text)",
            file=sys.stderr,
        )
        return 2
    if labels is not None and keep is not None:
        tally = AccuracyTally(labels)
        tally.add(keep)
        say(f"convnet-classify: {tally.summary()}")
    rate = (classified + failed) / elapsed if elapsed > 0 else 0.0
    unknown_part = (
        f", {unknown[0]} unknown (score over {model.unknown_threshold:.4g})" if model.has_unknown_score else ""
    )
    say(
        f"classified {classified} images, {failed} failed{unknown_part}, model {model.info.name}, "
        f"provider {model.provider_in_use}, in {elapsed:.2f} s ({rate:.1f} images/s)"
    )
    return 1 if failed or sort_failed else 0


if __name__ == "__main__":
    sys.exit(main())
