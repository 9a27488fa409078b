"""Decode each training image once and keep the decoded pixels in memory across epochs.

Why: the streaming pipeline (training.data.make_dataset with no cache) decodes and resizes
every JPEG again each epoch, and its old `Dataset.cache()` filled only during the first
epoch, held float32 copies (4x the bytes) and had no limit, so a folder larger than memory
could exhaust it. Here the files are decoded up front by a pool of threads (OpenCV
releases the GIL while decoding and resizing, so all cores work), stored as one uint8
array, and each epoch only gathers batches of it by a shuffled index. The decoded bytes
must fit a memory budget; a folder that does not fit streams from the files instead.

The batches equal the streaming pipeline's: the same pixels (the same decode and resize
function), the same labels, and the same order, because tf.data shuffles indices here
exactly as it shuffles the decoded images there (same seed, same buffer, same count).
"""

from __future__ import annotations

import functools
import os
import sys
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from convnet_common.imaging import ImageReadError, load_image_for_model

# Never more than this many MiB of decoded images, whatever memory is free; the variable
# CONVNET_TRAIN_CACHE_MB overrides it (0 turns the cache off: every epoch streams).
DEFAULT_BUDGET_MB = 4096
BUDGET_VARIABLE = "CONVNET_TRAIN_CACHE_MB"
# A run uses two splits (training and validation); a process that trains again (tests, the
# benchmarks) keeps no more than that from earlier runs.
MAX_SPLITS = 2
# Of the memory free when the run starts, the cache may take at most this share (the
# network, TensorFlow and the shuffle buffers need the rest).
AVAILABLE_SHARE = 0.5


def decoded_bytes(count: int, image_size: int) -> int:
    """The bytes `count` decoded images take: uint8 RGB at image_size x image_size."""
    return count * image_size * image_size * 3


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_budget_bytes() -> int:
    """How many bytes of decoded images this run may keep: the configured ceiling (or the
    default) and never more than AVAILABLE_SHARE of the memory free now."""
    text = os.environ.get(BUDGET_VARIABLE, "").strip()
    try:
        ceiling = int(float(text) * 2**20) if text else DEFAULT_BUDGET_MB * 2**20
    except ValueError:
        print(f"warning: {BUDGET_VARIABLE}={text!r} is not a number of MiB; using {DEFAULT_BUDGET_MB}", file=sys.stderr)
        ceiling = DEFAULT_BUDGET_MB * 2**20
    available = available_memory_bytes()
    if available is not None:
        ceiling = min(ceiling, int(available * AVAILABLE_SHARE))
    return max(ceiling, 0)


def decode_or_blank(path: str, image_size: int) -> np.ndarray:
    """The image as the model sees it; a file that changed since the scan becomes a blank
    image with a warning (the streaming pipeline does the same, keeping labels aligned)."""
    try:
        return load_image_for_model(path, image_size, image_size)
    except ImageReadError as error:
        return _blank_for(error, image_size)


def _blank_for(error: ImageReadError, image_size: int) -> np.ndarray:
    print(f"warning: {error} (changed since the scan; a blank image stands in for it)", file=sys.stderr, flush=True)
    return np.zeros((image_size, image_size, 3), np.uint8)


def decode_all(
    paths: list[str], image_size: int, workers: int | None = None, failed: np.ndarray | None = None
) -> np.ndarray:
    """Every file decoded and resized once, in parallel threads, into one uint8 NHWC array;
    `failed` (bool per file), when given, marks the files a blank image stands in for."""
    images = np.empty((len(paths), image_size, image_size, 3), np.uint8)

    def fill(index: int) -> None:
        try:
            images[index] = load_image_for_model(paths[index], image_size, image_size)
        except ImageReadError as error:
            images[index] = _blank_for(error, image_size)
            if failed is not None:
                failed[index] = True

    workers = workers or min(32, (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, range(len(paths))))
    return images


def file_stamps(paths: list[str]) -> tuple:
    """Size and modification time of each file: a file rewritten since it was decoded
    is decoded again, never served stale from memory."""
    stamps = []
    for path in paths:
        try:
            status = os.stat(path)
            stamps.append((status.st_size, status.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


@dataclass(frozen=True)
class DecodedImages:
    """A split's decoded pixels (N, size, size, 3 uint8) and int32 labels, in sample order."""

    images: np.ndarray
    labels: np.ndarray
    failed: np.ndarray | None = None  # bool per image: unreadable at decode, a blank stands in


class DecodedStore:
    """The decoded splits of this process, so that stage 2, the feature extraction and the
    validation pipeline reuse what stage 1 decoded. Holds at most the budget in total
    and MAX_SPLITS splits; the least recently used split goes first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, DecodedImages] = OrderedDict()

    def get(self, paths: list[str], labels: list[int], image_size: int, budget: int) -> DecodedImages | None:
        """The split decoded (now or earlier), or None when it does not fit the budget."""
        needed = decoded_bytes(len(paths), image_size)
        if needed == 0 or needed > budget:
            return None
        key = (image_size, tuple(paths), tuple(labels), file_stamps(paths))
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        while self._entries and (self.held_bytes() + needed > budget or len(self._entries) >= MAX_SPLITS):
            self._entries.popitem(last=False)
        failed = np.zeros(len(paths), bool)
        decoded = DecodedImages(decode_all(paths, image_size, failed=failed), np.asarray(labels, np.int32), failed)
        self._entries[key] = decoded
        return decoded

    def reader(self, paths: list[str], image_size: int) -> Callable[[str, int, int], np.ndarray]:
        """A stand-in for load_image_for_model that serves `paths` from memory when this
        store holds them decoded at `image_size` (the validation split, for the run's
        calibration and report): the same pixels, without decoding every file again.
        Anything else — another size, a file rewritten since, one unreadable at decode —
        is decoded (and fails) as load_image_for_model would."""
        wanted, stamps = tuple(paths), None
        for (size, held_paths, _labels, held_stamps), entry in self._entries.items():
            if size != image_size or held_paths != wanted:
                continue
            stamps = file_stamps(paths) if stamps is None else stamps
            if held_stamps == stamps:
                index = {path: i for i, path in enumerate(paths)}
                return functools.partial(_from_memory, entry, index, image_size)
        return load_image_for_model

    def held_bytes(self) -> int:
        return sum(entry.images.nbytes for entry in self._entries.values())

    def clear(self) -> None:
        self._entries.clear()


def _from_memory(entry: DecodedImages, index: dict, size: int, path: str, height: int, width: int) -> np.ndarray:
    i = index.get(path)
    if i is None or (height, width) != (size, size) or (entry.failed is not None and entry.failed[i]):
        return load_image_for_model(path, height, width)
    return entry.images[i]


STORE = DecodedStore()


def batches_from_memory(decoded: DecodedImages, batch_size: int, shuffle: bool, seed: int):
    """(float32 images, int32 labels) batches gathered from memory by a shuffled index.

    Only indices pass through tf.data's shuffle; each batch is one numpy gather of
    uint8 pixels, cast to float32 in the graph (the streaming pipeline's dtype)."""
    import tensorflow as tf

    images, labels = decoded.images, decoded.labels
    size = images.shape[1]

    def gather(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[indices], labels[indices]

    def load(indices):
        batch, batch_labels = tf.numpy_function(gather, [indices], (tf.uint8, tf.int32), stateful=False)
        batch.set_shape((None, size, size, 3))
        batch_labels.set_shape((None,))
        return tf.cast(batch, tf.float32), batch_labels

    dataset = tf.data.Dataset.range(len(labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)
