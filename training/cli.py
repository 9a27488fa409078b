"""`convnet-train`: the command line over the training package (argument parsing only).

The commands, their options and the help a user reads first: training.cli_parsers. Here:
running a parsed command and reporting how it ended (one line and exit 2 for input that
needs fixing, an event for `--progress jsonl`, the resume command after a stop).
TensorFlow is imported only by the commands that need it (not by `models` or `--help`),
and through training.tf_runtime, which keeps its CUDA start-up noise off machines
without an NVIDIA GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys

from convnet_common.terminal_text import terminal_safe
from training.cli_parsers import CommandLineError, build_parser, train_options
from training.progress import Progress, asks_for_jsonl, report_stop, sigterm_stops

# Commands that only read what the networks record about themselves: no TensorFlow.
_NO_TENSORFLOW = frozenset({"models", "adopt"})  # adopt loads it only for Keras sources
# (module, class) of the errors that mean "your input needs fixing": one line, exit 2.
# Looked up only in modules already imported, so a command never imports TensorFlow
# just to name an error it cannot raise.
_USAGE_ERRORS = (
    ("training.data", "DatasetError"),
    ("training.export", "ExportError"),
    ("training.gradcam", "UnsupportedHeadError"),
    ("training.registry", "UnknownBackboneError"),
    ("training.run_lock", "RunInUseError"),
    ("training.resume_run", "NothingToResumeError"),
    ("training.weights", "WeightsUnavailableError"),
    ("convnet_common.imaging", "ImageReadError"),
    ("training.adopt.source", "AdoptError"),
)


def _train_config(args: argparse.Namespace, argv: list[str]):
    """Defaults < --config file < flags given on the command line."""
    from training.config import TrainConfig

    values = {k: v for k, v in vars(args).items() if k not in ("command", "config", "resume", "progress")}
    if args.config:
        from_file = TrainConfig.load(args.config)
        given = {action.dest for action in train_options() if any(opt in argv for opt in action.option_strings)}
        for key, value in vars(from_file).items():
            if key in values and key not in given and not (key in ("data_dir", "out") and values[key]):
                values[key] = value
        if "backbone" in given and "weights" not in given and from_file.backbone != values["backbone"]:
            values["weights"] = None  # the file's weights were for its network: the new one's default
    if not values.get("data_dir") or not values.get("out"):
        raise SystemExit("convnet-train train: error: DATA_DIR and --out are required (or --resume RUN_DIR)")
    values.pop("augmentation", None)
    return TrainConfig(**values)


def _usage_errors() -> tuple[type[BaseException], ...]:
    loaded = (getattr(sys.modules[module], name) for module, name in _USAGE_ERRORS if module in sys.modules)
    return (ValueError, *loaded)


def _needs_tensorflow(args: argparse.Namespace) -> bool:
    """Everything but the listing and scoring an .onnx file (ONNX Runtime) runs Keras."""
    if args.command in _NO_TENSORFLOW:
        return False
    return not (args.command == "evaluate" and str(args.source).lower().endswith(".onnx"))


def run(args: argparse.Namespace, argv: list[str], progress: Progress | None = None) -> int:
    if _needs_tensorflow(args):
        from training.tf_runtime import load_tensorflow

        load_tensorflow()
    if args.command == "train":
        from training.distributed import train
        from training.resume_run import resume

        if args.resume:
            resume(args.resume, progress=progress)
        else:
            config = _train_config(args, argv)
            args.out = config.out  # perhaps from --config: where a stop says to resume
            train(config, progress=progress)
    elif args.command == "export":
        from training.export import export_run

        export_run(
            args.run_dir,
            args.out,
            test_dir=args.test_dir,
            tolerance=args.tolerance,
            precision=args.precision,
            unknown_accept_rate=args.unknown_accept_rate,
            fine_map=args.fine_map,
        )
    elif args.command == "evaluate":
        from training.evaluate import evaluate, format_evaluation

        print(format_evaluation(evaluate(args.source, args.data_dir, args.report, args.top_k)))
    elif args.command == "pretrained":
        from training.pretrained import export_pretrained

        export_pretrained(args.name, args.out)
    elif args.command == "models":
        from training.summary import format_models_table, list_models, models_json

        rows = list_models(with_params=not args.no_params)
        if args.json:
            print(models_json(rows))
            return 0
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        print(format_models_table(rows, width=width))
        print(
            "\nmultiply-adds: the work for one image at the input size, a speed hint independent of the "
            "machine.\nPretrained networks start from ImageNet weights (--weights imagenet, their default); "
            "the others\nstart from random weights (--weights none). `convnet-train summary NAME` shows the layers."
        )
    elif args.command == "summary":
        from training.summary import summary_text

        print(summary_text(args.name, classes=args.classes, include_top=args.include_top, image_size=args.image_size))
    elif args.command == "augment-preview":
        from training.augment import resolve_augment
        from training.augment_preview import preview_grid

        path = preview_grid(args.image, resolve_augment(args.augment), args.out, args.count, args.size, args.seed)
        print(f"wrote {path}", file=sys.stderr)
    elif args.command == "adopt":
        from training.adopt.commands import run_adopt

        return run_adopt(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    progress = Progress()  # text mode: the events go nowhere
    try:
        if asks_for_jsonl(argv):
            progress.claim_stdout()
        try:
            args = build_parser().parse_args(argv)
        except CommandLineError as refused:
            progress.error("usage", terminal_safe(refused.message))
            raise
        if getattr(args, "progress", "text") == "jsonl":
            progress.claim_stdout()
            progress.command = "resume" if args.resume else "train"
            stop_on_sigint()
        with sigterm_stops(args.command == "train"):
            return _run_reporting(args, argv, progress)
    finally:
        progress.release_stdout()


def stop_on_sigint() -> None:
    """SIGINT means Stop to a program reading --progress jsonl (the app's Train tab): make
    sure it does even when this process was started with SIGINT ignored, as a shell starts
    background jobs (`./run-app.sh &`) and everything they start. Python then leaves it
    ignored, and Stop would silently let the run go on to the end."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_reporting(args: argparse.Namespace, argv: list[str], progress: Progress) -> int:
    """run(), with its errors and stops as one line for people and an event for programs."""
    try:
        return run(args, argv, progress)
    except SystemExit as stop:  # a message given as the exit status (DATA_DIR and --out missing)
        if isinstance(stop.code, str):
            progress.error("usage", terminal_safe(stop.code.removeprefix("convnet-train train: error: ")))
        raise
    except Exception as error:
        if not isinstance(error, _usage_errors()):
            progress.error("internal", terminal_safe(f"{type(error).__name__}: {error}".splitlines()[0][:500]))
            raise  # the traceback goes to stderr
        print(f"convnet-train: error: {terminal_safe(error)}", file=sys.stderr)  # names in it are strangers' text
        progress.error("usage", terminal_safe(error))
        return 2
    except KeyboardInterrupt as stop:  # Ctrl+C, or SIGTERM (training.progress.Terminated)
        where = getattr(args, "out", None) or getattr(args, "resume", None)
        return report_stop(stop, args.command, where, progress)


# Exit statuses of a run stopped by Ctrl+C and by SIGTERM (training.progress.report_stop).
STOPPED = (130, 143)


def console_main() -> int:
    """The `convnet-train` command: main(), and after a stop, an exit that skips the
    interpreter's clean-up.

    Why: a run stopped mid-epoch leaves TensorFlow's input-pipeline threads behind, and at
    interpreter shutdown they can wait forever for the lock the finalising interpreter holds:
    the process printed its stop line and then stayed alive (seen in two full test runs
    under load, still there 120 s later). By then everything the run keeps is written
    through atomic renames; the standard streams are flushed here."""
    code = main()
    if code in STOPPED:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(console_main())
