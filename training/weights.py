"""Resolve `--weights imagenet|none|PATH` and explain a failed ImageNet download."""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras

from training.registry import Backbone


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be had; the message says where to put the file."""


def keras_cache_dir() -> Path:
    """The folder where Keras looks for downloaded weights (honours KERAS_HOME)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def resolve_weights(spec: str | None, backbone: Backbone) -> str | None:
    """Map the CLI value to what the constructor takes: 'imagenet', None, or a file path.

    No value means the backbone's default (TrainConfig fills it in; this is for callers
    that build a config some other way): ImageNet for keras.applications networks, none
    for networks built from scratch.
    """
    if spec is None:
        spec = "imagenet" if backbone.supports_imagenet else "none"
    if spec == "none":
        return None
    if spec == "imagenet":
        if not backbone.supports_imagenet:
            raise WeightsUnavailableError(
                f"{backbone.name} is built from scratch in this package and has no ImageNet weights; "
                "use --weights none (the default for it: random initial weights) or a .weights.h5 file"
            )
        return "imagenet"
    path = Path(spec)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file not found: {path}")
    if not path.name.endswith(".weights.h5"):
        raise WeightsUnavailableError(f"weights file must be a Keras '.weights.h5' file: {path}")
    return str(path)


_URL = re.compile(r"https?://\S+?\.(?:h5|json)")


def is_download_failure(error: BaseException) -> bool:
    return "fetch failure" in str(error).lower()


def download_failure(what: str, error: BaseException) -> WeightsUnavailableError:
    """Keras's bare 'URL fetch failure' turned into what to download and where to put it."""
    match = _URL.search(str(error))
    url = match.group(0) if match else "(see the Keras documentation)"
    filename = url.rsplit("/", 1)[-1]
    return WeightsUnavailableError(
        f"could not download {what}: this machine cannot reach the internet "
        f"({str(error).split(' -- ')[-1].strip()}).\n"
        f"  file needed: {filename}\n"
        f"  from:        {url}\n"
        f"  put it in:   {keras_cache_dir()}/\n"
        "Download it on a connected machine and copy it there, or train with --weights PATH, "
        "or with --weights none (random weights: the whole network trains from scratch, which "
        "needs far more images and epochs than fine-tuning)."
    )


def build_base_with_weights(backbone: Backbone, input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
    """Build the backbone; turn Keras's bare 'URL fetch failure' into an actionable message."""
    try:
        return backbone.build_base(input_shape, weights)
    except Exception as error:  # Keras raises plain Exception for a failed download
        if weights != "imagenet" or not is_download_failure(error):
            raise
        raise download_failure(f"the ImageNet weights for {backbone.name}", error) from None
