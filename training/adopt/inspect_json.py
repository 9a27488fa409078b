"""`convnet-train adopt SOURCE --inspect [--json]`: what the source reveals, for the app's Adopt dialog.

The app runs this as a child process and reads ONE JSON object from stdout (schema 1,
docs/adopting-models.md). It exits 0 whenever the source could be read, even with
settings still missing — the dialog asks the user for those. With --preview-onnx PATH
the original graph (float input, as the source takes it) is written there atomically
so the app can preview predictions with ONNX Runtime and numpy preprocessing.
"""

from __future__ import annotations

import json
from pathlib import Path

from convnet_common.atomic import atomic_path
from training.adopt import graph_facts
from training.adopt.pipeline import describe_resolution, read_and_resolve
from training.adopt.settings import AdoptFlags, Resolution
from training.adopt.source import AdoptError

SCHEMA = 1
SETTING_NAMES = ("layout", "input_size", "mean", "std", "channel_order", "resize", "crop_fraction", "output", "labels")


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def inspection(resolution: Resolution, preview_onnx: Path | None) -> dict:
    """The schema-1 object for a readable source."""
    source = resolution.source
    image = graph_facts.image_input(source.graph.graph, source.path.name)
    settings = {
        name: {"value": _plain(resolution.values[name].value), "origin": resolution.values[name].origin}
        for name in SETTING_NAMES
        if name in resolution.values
    }
    if preview_onnx is not None:
        try:
            data = source.graph.SerializeToString()
        except ValueError:
            raise AdoptError(f"{source.path.name} is over 2 GB: no preview file can be written") from None
        with atomic_path(preview_onnx) as tmp:
            tmp.write_bytes(data)
    return {
        "schema": SCHEMA,
        "kind": source.kind,
        "source": str(source.path),
        "input": {"name": image.name, "dtype": image.dtype, "shape": list(image.shape)},
        "class_count": resolution.class_count,
        "settings": settings,
        "missing": [{"setting": m.setting, "flag": m.flag, "message": m.message} for m in resolution.missing],
        "notes": list(resolution.notes),
        "preview_onnx": str(preview_onnx) if preview_onnx is not None else None,
    }


def error_object(message: str) -> dict:
    return {"schema": SCHEMA, "error": message}


def run_inspect(source: str | Path, flags: AdoptFlags, as_json: bool, preview_onnx: str | Path | None) -> int:
    """Print the inspection; 0 when the source was read. AdoptError (with the JSON error object
    already printed when `as_json`) when it could not be."""
    preview = Path(preview_onnx) if preview_onnx else None
    try:
        resolution = read_and_resolve(source, flags)
        found = inspection(resolution, preview)
    except ValueError as error:  # AdoptError, or a reader's own ValueError: one line either way
        if as_json:
            print(json.dumps(error_object(str(error))), flush=True)
        raise
    if as_json:
        print(json.dumps(found), flush=True)
        return 0
    for line in describe_resolution(resolution):
        print(line)
    if resolution.missing:
        print("still needed before adopting:")
        for message in dict.fromkeys(m.message for m in resolution.missing):
            print(f"  {message}")
    else:
        print("everything is known: run the same command with --out MODEL.onnx instead of --inspect")
    if preview is not None:
        print(f"wrote the original graph to {preview}")
    return 0
