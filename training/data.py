"""Read a folder of class folders into a seeded train/validation split and tf.data pipelines.

Images are decoded with the same OpenCV code and resized with the same function the
desktop app uses (convnet_common.imaging), so a model sees identical pixels in both.
Unreadable files (empty, truncated, not images, too many pixels, unreadable, links
that loop or lead nowhere, pipes) are skipped with their reason instead of stopping a
long run midway; folder links are not followed, so a link loop cannot repeat files.

What counts as a class, an image or a trainable dataset is decided in
convnet_common.class_folders (the app's Train tab applies the same rules and may not
import this package); the names are re-exported here, where the training code and the
tests have always found them. This module keeps what needs numpy or TensorFlow: the
seeded split, class weights and the tf.data pipelines.
"""

from __future__ import annotations

import numpy as np

from convnet_common.class_folders import (
    GENERIC_FOLDER_NAMES,
    MIN_IMAGES_TO_SPLIT,
    DatasetError,
    Sample,
    ScannedFolder,
    default_dataset_name,
    scan_class_folders,
    spelled,
    validate_for_training,
    validation_count,
)
from convnet_common.imaging import load_image_for_model

__all__ = [
    "GENERIC_FOLDER_NAMES",
    "MIN_IMAGES_TO_SPLIT",
    "DatasetError",
    "Sample",
    "ScannedFolder",
    "class_weights_for",
    "default_dataset_name",
    "label_encoder",
    "load_batch",
    "make_dataset",
    "prepare_split",
    "scan_class_folders",
    "split_samples",
    "validate_for_training",
]


# The old private name, which tests/training/test_deep_and_look_alike_folders.py reaches here.
_spelled = spelled


def split_samples(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Stratified split: each class gives the same fraction (at least one image) to validation."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[Sample]] = {}
    for sample in samples:
        by_label.setdefault(sample.label, []).append(sample)
    train, val = [], []
    for label in sorted(by_label):
        group = by_label[label]
        order = rng.permutation(len(group))
        n_val = validation_count(len(group), val_fraction)
        val.extend(group[i] for i in order[:n_val])
        train.extend(group[i] for i in order[n_val:])
    return train, val


def prepare_split(data_dir, val_dir: str | None, val_fraction: float, seed: int):
    """(scanned training folder, training samples, validation samples): a seeded split of
    `data_dir`, or all of it with `val_dir` for validation. DatasetError says what to fix."""
    scanned = scan_class_folders(data_dir)
    validate_for_training(scanned, data_dir)
    if val_dir:
        val_scan = scan_class_folders(val_dir, class_names=scanned.class_names)
        if not val_scan.samples:
            raise DatasetError(f"validation folder {val_dir} contains no readable images")
        scanned.skipped.extend(val_scan.skipped)
        return scanned, scanned.samples, val_scan.samples
    train, val = split_samples(scanned.samples, val_fraction, seed)
    if not val:
        raise DatasetError("too few images for a validation split; add images or pass --val-dir")
    return scanned, train, val


def load_batch(samples: list[Sample], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode samples into uint8 NHWC images and int labels (used for checks and exports)."""
    images = np.stack([load_image_for_model(s.path, image_size, image_size) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    return images, labels


def decoded_reader(samples: list[Sample], image_size: int):
    """load_image_for_model, or a stand-in serving these samples' pixels from the decoded
    store when the run holds them (training.decoded_cache.DecodedStore.reader)."""
    from training import decoded_cache

    return decoded_cache.STORE.reader([s.path for s in samples], image_size)


def class_weights_for(counts: list[int], mode: str, imbalance_ratio: float) -> list[float] | None:
    """Inverse-frequency weights (mean 1) when asked, or when 'auto' finds the classes
    imbalanced: the largest class holding more than `imbalance_ratio` times the smallest."""
    if mode == "off" or not counts or min(counts) == 0:
        return None
    if mode == "auto" and max(counts) <= imbalance_ratio * min(counts):
        return None
    total, n = sum(counts), len(counts)
    return [total / (n * count) for count in counts]


def make_dataset(
    samples: list[Sample],
    image_size: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_classes: int,
    augmentation=None,
    output_names: tuple[str, ...] = (),
    class_weights: list[float] | None = None,
    cache: bool = True,
    frozen_part=None,
):
    """A tf.data pipeline of (float32 RGB 0..255, one-hot label[, sample weight]) batches.

    With `cache` (the default) every file is decoded once, up front and in parallel, and
    the uint8 pixels stay in memory for every epoch and stage (training.decoded_cache),
    when they fit its memory budget; otherwise, and with cache=False, each epoch streams
    from the files. Both give the same batches in the same order. Augmentation runs on
    whole batches here, in the input pipeline, and so never ends up in the exported
    model. With several `output_names` (auxiliary classifiers) the label is repeated for
    each output. A `frozen_part` (training.frozen_engine.FrozenPart) then turns each
    (augmented) batch into its outputs, which are what the batches hold instead of pixels.
    """
    import tensorflow as tf

    from training import decoded_cache

    decoded = None
    if cache:
        budget = decoded_cache.memory_budget_bytes()
        paths, labels = [s.path for s in samples], [s.label for s in samples]
        decoded = decoded_cache.STORE.get(paths, labels, image_size, budget)
    if decoded is not None:
        dataset = decoded_cache.batches_from_memory(decoded, batch_size, shuffle, seed)
    else:
        dataset = streamed_batches(samples, image_size, batch_size, shuffle, seed)
    if augmentation is not None:
        dataset = dataset.map(
            lambda images, y: (augmentation(images, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    if frozen_part is not None:  # one batch at a time (it uses every core); prefetch overlaps it with the step
        dataset = dataset.map(frozen_part.dataset_map())
    return dataset.map(label_encoder(num_classes, output_names, class_weights)).prefetch(tf.data.AUTOTUNE)


def streamed_batches(samples: list[Sample], image_size: int, batch_size: int, shuffle: bool, seed: int):
    """(float32 images, int32 labels) batches decoded from the files every epoch: for a
    folder whose decoded images do not fit the memory budget."""
    import tensorflow as tf

    from training.decoded_cache import decode_or_blank

    paths = np.array([s.path for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int32)

    def load(path, label):
        decode = lambda encoded: decode_or_blank(encoded.decode("utf-8"), image_size)  # noqa: E731 - a one-line adapter for numpy_function
        image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        image.set_shape((image_size, image_size, 3))
        return tf.cast(image, tf.float32), label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle:  # before decoding: the buffer holds paths, not images
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)


def label_encoder(num_classes: int, output_names: tuple[str, ...] = (), class_weights: list[float] | None = None):
    """Map (x, int label) to (x, one-hot[, per-output dict][, sample weight])."""
    import tensorflow as tf

    weights = tf.constant(class_weights, tf.float32) if class_weights else None

    def encode(x, label):
        one_hot = tf.one_hot(label, num_classes)
        y = {name: one_hot for name in output_names} if len(output_names) > 1 else one_hot
        if weights is None:
            return x, y
        return x, y, tf.gather(weights, label)

    return encode
