"""`convnet-train adopt`: read a source, resolve its settings, compose, check, write — or nothing.

The order matters for what a failure leaves behind: every refusal (an unreadable source,
a setting still unknown, a graph that will not compose, a check that fails) happens
before the rename, so --out is either the checked adopted file or untouched, and no
temporary file stays (convnet_common.atomic). The original is never modified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convnet_common.atomic import atomic_path
from convnet_common.terminal_text import terminal_safe
from training.adopt import check, compose
from training.adopt.dispatch import read_source
from training.adopt.settings import AdoptFlags, Resolution, resolve
from training.adopt.source import AdoptError, AdoptSettings, AdoptSource


@dataclass
class AdoptReport:
    out: Path
    settings: AdoptSettings
    check: check.CheckResult
    resolution: Resolution


def guarded(source: AdoptSource) -> Callable[[AdoptSettings, int], None]:
    """The guard `resolve` runs before the original's first run here: the composed graph, probed."""

    def guard(partial: AdoptSettings, channels: int) -> None:
        composed = compose.compose_graph(source, partial, channels, softmax=False)
        check.guard_original(composed, source.path.name, check.CHECK_IMAGES)

    return guard


def read_and_resolve(source_path: str | Path, flags: AdoptFlags) -> Resolution:
    source = read_source(source_path)
    return resolve(source, flags, guarded(source))


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return " ".join(f"{v:g}" for v in value)
    if isinstance(value, list):
        shown = ", ".join(value[:5]) + (f", … ({len(value)} names)" if len(value) > 5 else "")
        return shown
    return str(value)


def describe_resolution(resolution: Resolution) -> list[str]:
    """The lines a person reads: each setting, its value and where it came from; flags that replaced detection."""
    source = resolution.source
    lines = [f"source: {source.path} ({source.kind})"]
    order = ("layout", "input_size", "input_dtype", "mean", "std", "channel_order", "output", "resize")
    for name in order + ("crop_fraction", "labels"):
        if name == "crop_fraction" and resolution.values.get("resize", None) is not None:
            if resolution.values["resize"].value != "shorter-side-crop":
                continue
        known = resolution.values.get(name)
        if known is None:
            continue
        lines.append(f"  {name:<14} {_format_value(known.value):<28} {known.origin}")
        replaced = resolution.overridden.get(name)
        if replaced is not None:
            lines.append(f"  {'':<14} (the flag replaces {_format_value(replaced.value)} from {replaced.origin})")
    for missing in resolution.missing:
        lines.append(f"  {missing.setting:<14} MISSING: give {missing.flag}")
    lines += [f"note: {note}" for note in resolution.notes]
    return [terminal_safe(line) for line in lines]


def adopt(
    source_path: str | Path, out: str | Path, flags: AdoptFlags, echo: Callable[[str], None] = print
) -> AdoptReport:
    """Adopt SOURCE into the ConvNet Studio model OUT, checked against the original; AdoptError if not."""
    source_path, out = Path(source_path), Path(out)
    if out.suffix.lower() != ".onnx":
        raise AdoptError(f"--out must name an .onnx file, got {out.name}")
    if out.exists() and source_path.exists() and out.resolve() == source_path.resolve():
        raise AdoptError("--out must not be the source: the original is never modified")
    if out.is_dir():
        raise AdoptError(f"--out {out} is a folder; give a file name ending in .onnx")
    resolution = read_and_resolve(source_path, flags)
    for line in describe_resolution(resolution):
        echo(line)
    settings = resolution.settings()
    source = resolution.source
    model = compose.compose_graph(source, settings, resolution.channels)
    compose.set_metadata(model, compose.adopted_metadata(source, settings, resolution.channels))
    try:
        data = model.SerializeToString()
    except ValueError:
        raise AdoptError(f"{source.path.name} is over 2 GB, which adopting does not support") from None
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
        result = check.verify_written(tmp, source, settings, resolution.channels)
    echo(
        f"check: {result.images} test images, the adopted file matches the original within "
        f"{result.max_difference:.1e} (tolerance {result.tolerance:.0e}); top-1 agrees on "
        f"{result.top1_agreement:.0%}; it loads as a ConvNet Studio model ({len(result.labels)} classes)"
    )
    echo(terminal_safe(f"wrote {out}"))
    return AdoptReport(out, settings, result, resolution)
