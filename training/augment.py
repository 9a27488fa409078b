"""Turn the augmentation definition (convnet_common.augment_spec), stored with each run and in the
exported model's metadata, into Keras preprocessing layers for the input pipeline.
"""

from __future__ import annotations

from pathlib import Path

from convnet_common.augment_spec import FILL_MODES, PRESETS, AugmentSpec  # noqa: F401  re-exported


def resolve_augment(value: str) -> AugmentSpec:
    """A preset name or a YAML/JSON file of AugmentSpec fields."""
    if value in PRESETS:
        return PRESETS[value]
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"--augment takes one of {', '.join(PRESETS)} or a YAML file; {value!r} is neither")
    from training.config import load_yaml_limited

    values = load_yaml_limited(path) or {}
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
        mode = (
            "horizontal_and_vertical"
            if spec.horizontal_flip and spec.vertical_flip
            else ("horizontal" if spec.horizontal_flip else "vertical")
        )
        steps.append(layers.RandomFlip(mode, seed=seed))
    if spec.rotation_degrees:
        steps.append(layers.RandomRotation(spec.rotation_degrees / 360.0, fill_mode=spec.fill_mode, seed=seed))
    if spec.width_shift or spec.height_shift:
        steps.append(layers.RandomTranslation(spec.height_shift, spec.width_shift, fill_mode=spec.fill_mode, seed=seed))
    if spec.shear:
        steps.append(layers.RandomShear(x_factor=spec.shear, fill_mode=spec.fill_mode, seed=seed))
    if spec.zoom:
        steps.append(layers.RandomZoom(spec.zoom, fill_mode=spec.fill_mode, seed=seed))
    if spec.brightness:
        steps.append(layers.RandomBrightness(spec.brightness, value_range=(0, 255), seed=seed))
    if spec.contrast:
        steps.append(layers.RandomContrast(spec.contrast, seed=seed))
    return keras.Sequential(steps, name="augmentation")
