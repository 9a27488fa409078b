"""The augmentation definition, shared by training (Keras layers) and the desktop preview
(OpenCV), so both read the same fields, limits and presets from one place.

The knobs follow Keras's ImageDataGenerator as the course notes use it (rotation in
degrees, shifts and zoom as fractions, flips, fill mode). `shear` is the slope Keras 3's
RandomShear applies: a row slides by shear x its row index.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


@dataclass(frozen=True)
class AugmentSpec:
    rotation_degrees: float = 0.0
    width_shift: float = 0.0
    height_shift: float = 0.0
    zoom: float = 0.0
    shear: float = 0.0  # slope of Keras RandomShear: a row slides by shear x its row index
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

    def replace(self, **changes: object) -> AugmentSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> AugmentSpec:
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
        rotation_degrees=50,
        width_shift=0.2,
        height_shift=0.2,
        shear=0.2,
        zoom=0.3,
        horizontal_flip=True,
        fill_mode="nearest",
    ),
}

FIELD_NAMES = tuple(f.name for f in dataclasses.fields(AugmentSpec))
