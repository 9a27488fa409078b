"""The augmentation definition: one serialisable object, stored with each run and in the
exported model's metadata, turned into Keras preprocessing layers for the input pipeline.

The knobs follow Keras's ImageDataGenerator as the course notes use it (rotation in
degrees, shifts and zoom as fractions, flips, fill mode).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


@dataclass(frozen=True)
class AugmentSpec:
    rotation_degrees: float = 0.0
    width_shift: float = 0.0
    height_shift: float = 0.0
    zoom: float = 0.0
    shear: float = 0.0  # fraction of the image width a row may slide (Keras RandomShear)
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    fill_mode: str = "nearest"

    def __post_init__(self) -> None:
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")
        for name in ("width_shift", "height_shift", "zoom", "shear", "brightness", "contrast"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if not 0.0 <= self.rotation_degrees <= 180.0:
            raise ValueError(f"rotation_degrees must be in [0, 180], got {self.rotation_degrees}")

    @property
    def is_identity(self) -> bool:
        return self == AugmentSpec(fill_mode=self.fill_mode)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "AugmentSpec":
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown augmentation setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)


PRESETS: dict[str, AugmentSpec] = {
    "none": AugmentSpec(),
    # Safe for most photos and for symbols whose mirror image means something else.
    "light": AugmentSpec(rotation_degrees=10, width_shift=0.1, height_shift=0.1, zoom=0.1),
    # The ImageDataGenerator settings the course notes use.
    "seed": AugmentSpec(
        rotation_degrees=50, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.3, horizontal_flip=True,
        fill_mode="nearest",
    ),
}


def resolve_augment(value: str) -> AugmentSpec:
    """A preset name or a YAML/JSON file of AugmentSpec fields."""
    if value in PRESETS:
        return PRESETS[value]
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"--augment takes one of {', '.join(PRESETS)} or a YAML file; {value!r} is neither")
    import yaml

    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of augmentation settings")
    return AugmentSpec.from_dict(values)


def build_augmentation(spec: AugmentSpec, seed: int | None = None):
    """A Keras Sequential of random layers for the tf.data pipeline, or None for identity."""
    if spec.is_identity:
        return None
    import keras
    from keras import layers

    steps = []
    if spec.horizontal_flip or spec.vertical_flip:
        mode = "horizontal_and_vertical" if spec.horizontal_flip and spec.vertical_flip else (
            "horizontal" if spec.horizontal_flip else "vertical"
        )
        steps.append(layers.RandomFlip(mode, seed=seed))
    if spec.rotation_degrees:
        steps.append(layers.RandomRotation(spec.rotation_degrees / 360.0, fill_mode=spec.fill_mode, seed=seed))
    if spec.width_shift or spec.height_shift:
        steps.append(
            layers.RandomTranslation(spec.height_shift, spec.width_shift, fill_mode=spec.fill_mode, seed=seed)
        )
    if spec.shear:
        steps.append(layers.RandomShear(x_factor=spec.shear, fill_mode=spec.fill_mode, seed=seed))
    if spec.zoom:
        steps.append(layers.RandomZoom(spec.zoom, fill_mode=spec.fill_mode, seed=seed))
    if spec.brightness:
        steps.append(layers.RandomBrightness(spec.brightness, value_range=(0, 255), seed=seed))
    if spec.contrast:
        steps.append(layers.RandomContrast(spec.contrast, seed=seed))
    return keras.Sequential(steps, name="augmentation")
