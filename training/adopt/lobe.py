"""Read a Lobe image-classification export (signature.json beside a SavedModel or model.onnx).

signature.json names the classes (`classes.Label`), the input (`inputs.Image.shape`,
[1, H, W, 3]) and the outputs (`Confidences`, the softmax, and `Prediction`, the label as
a string). The preprocessing is fixed in Lobe's own runtime, lobe-python
(src/lobe/image_utils.py, read at commit bf0c5819): `preprocess_image` scales the image so
both sides cover the input size (`resize_uniform_to_fill`) and crops the centre
(`crop_center`); `image_to_array` divides by 255, so pixels are 0-1 (mean 0, std 1) in RGB.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.adopt.detect_kind import LOBE_SIGNATURE, lobe_signature_file
from training.adopt.source import KIND_LOBE, AdoptError, AdoptSource, Detected

MAX_SIGNATURE_BYTES = 10_000_000
SCORE_OUTPUTS = ("Confidences", "Labels")  # lobe-python's LABEL_CONFIDENCES and its older name
ORIGIN_PIXELS = "Lobe export (lobe-python image_to_array: pixels / 255)"
ORIGIN_RESIZE = "Lobe export (lobe-python preprocess_image: resize to fill, centre crop)"


def read_signature(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_SIGNATURE_BYTES:
            raise AdoptError(f"{path}: over {MAX_SIGNATURE_BYTES} bytes; not a Lobe signature")
        signature = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise AdoptError(f"{path}: cannot read it: {error}") from None
    except json.JSONDecodeError as error:
        raise AdoptError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(signature, dict):
        raise AdoptError(f"{path}: a Lobe signature is a JSON object")
    return signature


def signature_labels(signature: dict, path: Path) -> list[str]:
    labels = (signature.get("classes") or {}).get("Label") if isinstance(signature.get("classes"), dict) else None
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise AdoptError(f"{path}: classes.Label must be a non-empty list of class names")
    return labels


def signature_input_size(signature: dict, path: Path) -> tuple[int, int] | None:
    image = (signature.get("inputs") or {}).get("Image") if isinstance(signature.get("inputs"), dict) else None
    shape = image.get("shape") if isinstance(image, dict) else None
    if not isinstance(shape, list) or len(shape) != 4:
        raise AdoptError(f"{path}: inputs.Image.shape must be [batch, height, width, 3]")
    height, width = shape[1], shape[2]
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    return None


def _read_onnx_format(folder: Path, signature: dict, path: Path) -> AdoptSource:
    filename = signature.get("filename") or "model.onnx"
    model_file = folder / Path(str(filename)).name
    try:
        from training.adopt import onnx_source
    except ImportError:
        raise AdoptError(
            f"{path}: ONNX-format Lobe exports are not supported yet; adopt {model_file.name} directly"
        ) from None
    return onnx_source.read_onnx_source(model_file)


def read_lobe(path: Path) -> AdoptSource:
    """The export folder, or its signature.json."""
    from training.adopt.savedmodel_source import read_savedmodel_source

    path = Path(path)
    signature_path = lobe_signature_file(path)
    if signature_path is None:
        raise AdoptError(f"{path}: a Lobe export is a folder with {LOBE_SIGNATURE}")
    folder = signature_path.parent
    signature = read_signature(signature_path)
    labels = signature_labels(signature, signature_path)
    input_size = signature_input_size(signature, signature_path)
    model_format = signature.get("format")
    if model_format == "tf":
        tags = signature.get("tags")
        tags = tags if isinstance(tags, list) and all(isinstance(t, str) for t in tags) and tags else None
        source = read_savedmodel_source(folder, preferred_outputs=SCORE_OUTPUTS, tags=tags)
    elif model_format == "onnx":
        source = _read_onnx_format(folder, signature, signature_path)
    else:
        raise AdoptError(f"{signature_path}: Lobe format {model_format!r} is not supported (tf and onnx are)")
    source.kind, source.path = KIND_LOBE, folder
    classes = _class_count(source)
    if classes is not None and classes != len(labels):
        raise AdoptError(
            f"{signature_path}: {len(labels)} classes in classes.Label but the model has {classes} outputs"
        )
    source.detected["labels"] = Detected(labels, f"{LOBE_SIGNATURE} (classes.Label)")
    if input_size is not None:
        source.detected["input_size"] = Detected(input_size, f"{LOBE_SIGNATURE} (inputs.Image.shape)")
    source.detected["mean"] = Detected((0.0, 0.0, 0.0), ORIGIN_PIXELS)
    source.detected["std"] = Detected((1.0, 1.0, 1.0), ORIGIN_PIXELS)
    source.detected["channel_order"] = Detected("rgb", ORIGIN_PIXELS)
    source.detected["resize"] = Detected("shorter-side-crop", ORIGIN_RESIZE)
    source.detected["crop_fraction"] = Detected(1.0, ORIGIN_RESIZE)
    source.detected["output"] = Detected("probabilities", f"{LOBE_SIGNATURE} (Confidences is Lobe's softmax output)")
    return source


def _class_count(source: AdoptSource) -> int | None:
    """Classes of the graph's first output, when its shape says so."""
    dims = source.graph.graph.output[0].type.tensor_type.shape.dim
    return dims[-1].dim_value if dims and dims[-1].dim_value > 0 else None
