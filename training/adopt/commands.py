"""The `adopt` command's arguments turned into a run: inspect (text or JSON) or adopt.

Kept out of training.cli so the command line module only names the command; errors are
AdoptError (one line, exit 2, printed by training.cli).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.adopt.settings import AdoptFlags
from training.adopt.source import AdoptError


def flags_from_args(args: argparse.Namespace) -> AdoptFlags:
    return AdoptFlags(
        labels_file=Path(args.labels) if args.labels else None,
        layout=args.layout,
        input_size=tuple(args.input_size) if args.input_size else None,
        mean=tuple(args.mean) if args.mean else None,
        std=tuple(args.std) if args.std else None,
        channel_order=args.channel_order,
        resize=args.resize,
        crop_fraction=args.crop_fraction,
        output=args.output,
    )


def run_adopt(args: argparse.Namespace) -> int:
    if args.inspect:
        from training.adopt.inspect_json import error_object, run_inspect

        try:
            flags = flags_from_args(args)
        except ValueError as error:
            if args.json:
                import json

                print(json.dumps(error_object(str(error))), flush=True)
            raise
        return run_inspect(args.source, flags, args.json, args.preview_onnx)
    if args.json or args.preview_onnx:
        raise AdoptError("--json and --preview-onnx go with --inspect")
    if not args.out:
        raise AdoptError("give --out MODEL.onnx (the adopted file to write), or --inspect to see what is detected")
    from training.adopt.pipeline import adopt

    adopt(args.source, args.out, flags_from_args(args))
    return 0
