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
    """The spec's random steps for the tf.data pipeline, applied to whole batches, or None
    for identity. The geometric steps resample the batch once (FusedAugmentation)."""
    if spec.is_identity:
        return None
    return FusedAugmentation(_keras_steps(spec, seed))


def build_sequential_augmentation(spec: AugmentSpec, seed: int | None = None):
    """The same steps as a plain keras.Sequential, each resampling the batch in turn: what
    FusedAugmentation is measured and tested against."""
    if spec.is_identity:
        return None
    import keras

    return keras.Sequential(_keras_steps(spec, seed), name="augmentation")


def _keras_steps(spec: AugmentSpec, seed: int | None) -> list:
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
    return steps


def _step_matrix(layer, images):
    """The (N, 8) output-to-input transform this Keras layer would apply to `images`,
    drawn from the layer's own random stream (so the draws are the layer's). The matrices
    are written out as Keras 3 builds them; tests/training/test_decoded_cache.py checks
    that each step alone gives exactly the layer's output."""
    from keras import layers, ops

    drawn = layer.get_random_transformation(images, training=True)
    if isinstance(layer, layers.RandomRotation):
        return ops.cast(drawn["rotation_matrix"], "float32")
    zero = ops.zeros_like(ops.cast(images[:, 0, 0, :1], "float32"))  # (N, 1)
    one = zero + 1.0
    if isinstance(layer, layers.RandomTranslation):
        shift = ops.cast(drawn["translations"], "float32")  # (dx, dy) in pixels
        return ops.concatenate([one, zero, -shift[:, :1], zero, one, -shift[:, 1:], zero, zero], axis=1)
    if isinstance(layer, layers.RandomShear):
        shear = ops.cast(drawn["shear_factor"], "float32")  # (sx, sy), about the top-left corner
        return ops.concatenate([one, shear[:, :1], zero, shear[:, 1:], one, zero, zero, zero], axis=1)
    zoom_x = ops.cast(drawn["width_zoom"], "float32")
    zoom_y = ops.cast(drawn["height_zoom"], "float32")
    height = ops.cast(ops.shape(images)[1], "float32")
    width = ops.cast(ops.shape(images)[2], "float32")
    offset_x = (width - 1.0) / 2.0 * (1.0 - zoom_x)  # about the centre
    offset_y = (height - 1.0) / 2.0 * (1.0 - zoom_y)
    return ops.concatenate([zoom_x, zero, offset_x, zero, zoom_y, offset_y, zero, zero], axis=1)


def _as_3x3(matrix):
    from keras import ops

    matrix = ops.cast(matrix, "float32")
    return ops.reshape(ops.concatenate([matrix, ops.ones_like(matrix[:, :1])], axis=1), (-1, 3, 3))


class FusedAugmentation:
    """The Keras random layers of a spec, with rotation, shift, shear and zoom composed into
    one transform per image and applied in one resampling of the batch.

    Why: each of those four layers resamples the whole batch (bilinear interpolation and
    edge fill), which on a CPU cost as much per image as decoding the JPEG. Their
    matrices map output pixels to input pixels, so applying them in turn equals one
    resampling by their product -- which is also how the course notes' ImageDataGenerator
    applies the same settings: one interpolation, edges filled once. The random draws
    come from the layers themselves (same ranges, same seeds, same order), so the spec
    recorded in the model describes exactly what ran. Flips, brightness and contrast run
    as the layers do, before and after.
    """

    def __init__(self, steps: list) -> None:
        from keras import layers

        geometric = (layers.RandomRotation, layers.RandomTranslation, layers.RandomShear, layers.RandomZoom)
        self.before = [step for step in steps if isinstance(step, layers.RandomFlip)]
        self.geometric = [step for step in steps if isinstance(step, geometric)]
        self.after = [step for step in steps if not isinstance(step, (layers.RandomFlip, *geometric))]
        self.fill_mode = self.geometric[0].fill_mode if self.geometric else "nearest"

    @property
    def layers(self) -> list:
        return [*self.before, *self.geometric, *self.after]

    def __call__(self, images, training: bool = True):
        from keras import ops

        if not training:
            return images
        for step in self.before:
            images = step(images, training=True)
        if self.geometric:
            combined = _as_3x3(_step_matrix(self.geometric[0], images))
            for step in self.geometric[1:]:
                combined = ops.matmul(combined, _as_3x3(_step_matrix(step, images)))
            combined = combined / combined[:, 2:3, 2:3]
            transform = ops.reshape(combined, (-1, 9))[:, :8]
            images = _affine(images, transform, self.fill_mode)
        for step in self.after:
            images = step(images, training=True)
        return images


def _affine(images, transform, fill_mode: str):
    from keras import ops

    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode=fill_mode)
