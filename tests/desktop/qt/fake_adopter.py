"""A fake `convnet-train adopt` for the Adopt dialog's tests: run as `python fake_adopter.py adopt SOURCE …`.

`--inspect --json --preview-onnx P` copies SOURCE (a float NCHW colour model from
onnx_factory) to P and prints the inspect JSON of desktop/core/adoption.py: layout, size
and output detected, mean and std missing. The real run (`--out OUT`) writes the colour
model as a ConvNet Studio file of the requested size and resize mode, after writing part
of it first (so a cancel has something to clean up). Every argv goes to $FAKE_ADOPT_LOG.
$FAKE_ADOPT: "unreadable" (inspect exits 2 with an error report), "fail" (the real run
exits 1 with one stderr line), "slow" (the real run sleeps 60 s before finishing).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/desktop: onnx_factory

MODE = os.environ.get("FAKE_ADOPT", "")
LABELS = ["red", "green", "blue"]


def option(args: list[str], name: str, count: int = 1) -> list[str] | None:
    if name not in args:
        return None
    at = args.index(name)
    return args[at + 1 : at + 1 + count]


def inspect(source: Path, preview: Path) -> int:
    if MODE == "unreadable":
        print(json.dumps({"schema": 1, "error": f"{source.name}: not an ONNX, Keras or SavedModel file"}))
        print(f"convnet-train adopt: error: {source.name}: not an ONNX, Keras or SavedModel file", file=sys.stderr)
        return 2
    shutil.copyfile(source, preview)
    report = {
        "schema": 1,
        "kind": "onnx",
        "source": str(source),
        "input": {"name": "image", "dtype": "float32", "shape": [None, 3, 16, 16]},
        "class_count": 3,
        "settings": {
            "layout": {"value": "nchw", "origin": "the input tensor's shape"},
            "input_size": {"value": [16, 16], "origin": "the input tensor's shape"},
            "output": {"value": "probabilities", "origin": "the graph ends in Softmax"},
            "labels": {"value": LABELS, "origin": "labels.txt beside the file"},
        },
        "missing": [
            {"setting": "mean", "flag": "--mean R G B", "message": "the pixel scaling is not recorded: give --mean"},
            {"setting": "std", "flag": "--std R G B", "message": "the pixel scaling is not recorded: give --std"},
        ],
        "notes": ["fake adopter"],
        "preview_onnx": str(preview),
    }
    print(json.dumps(report))
    return 0


def adopt(args: list[str]) -> int:
    import onnx_factory

    out = Path(option(args, "--out")[0])
    if MODE == "fail":
        print(
            "convnet-train adopt: error: the adopted file's probabilities differ from the original's", file=sys.stderr
        )
        return 1
    out.write_bytes(b"partial")
    if MODE == "slow":
        time.sleep(60)
    height, _width = (int(v) for v in option(args, "--input-size", 2) or ["16", "16"])
    labels = LABELS
    if option(args, "--labels"):
        labels = Path(option(args, "--labels")[0]).read_text(encoding="utf-8").split()
    metadata = onnx_factory.full_metadata(labels, height)
    if (option(args, "--resize") or ["stretch"])[0] == "shorter-side-crop":
        fraction = float(option(args, "--crop-fraction")[0])
        metadata["resize"] = json.dumps({"mode": "shorter_side_crop", "crop_fraction": fraction})
    onnx_factory.save_model(out, size=height, labels=labels, metadata=metadata)
    return 0


def main(args: list[str]) -> int:
    log = os.environ.get("FAKE_ADOPT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(args) + "\n")
    if args[:1] != ["adopt"]:
        print("fake adopter: only 'adopt' is faked", file=sys.stderr)
        return 2
    if "--inspect" in args:
        return inspect(Path(args[1]), Path(option(args, "--preview-onnx")[0]))
    return adopt(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
