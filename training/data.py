"""Read a folder of class folders into a seeded train/validation split and tf.data pipelines.

Images are decoded with the same OpenCV code and resized with the same function the
desktop app uses (convnet_common.imaging), so a model sees identical pixels in both.
Unreadable files (empty, truncated, not images, too many pixels, unreadable, links
that loop or lead nowhere, pipes) are skipped with their reason instead of stopping a
long run midway; folder links are not followed, so a link loop cannot repeat files.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convnet_common.folder_walk import UnreadableFolder, walk_files
from convnet_common.imaging import ImageReadError, is_image_file, load_image_for_model, load_image_rgb


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message says what to fix."""


@dataclass
class Sample:
    path: str
    label: int


@dataclass
class ScannedFolder:
    class_names: list[str]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def counts(self) -> dict[str, int]:
        tally = Counter(sample.label for sample in self.samples)
        return {name: tally.get(index, 0) for index, name in enumerate(self.class_names)}


def _images_under(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(image files below `folder`, folders that could not be listed with why).

    The shared iterative walker (convnet_common.folder_walk), in os.walk's order (a
    folder's files, then its sub-folders, each sorted) so seeded splits stay the same:
    no recursion limit however deep the folders nest, and time linear in depth. A linked
    folder is not entered (no loops, no repeats); links to files are listed whatever they
    point at, so a broken or looping one is reported with its reason like any other
    unreadable file. A folder that cannot be listed (no permission, a path over the
    system's length limit) is reported instead of silently losing what is inside.
    """
    found: list[Path] = []
    unreadable: list[tuple[Path, str]] = []
    for item in walk_files(folder, is_image_file, follow_folder_links=False, files_first=True):
        if isinstance(item, UnreadableFolder):
            unreadable.append((item.path, item.reason))
        else:
            found.append(item)
    return found, unreadable


def _clash_key(name: str) -> str:
    """Names that look alike, or merge on macOS/Windows file systems, share this key."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _spelled(name: str) -> str:
    """A name with its code points visible, so that NFC and NFD spellings can be told apart."""
    return name if name.isascii() else f"{name} ({ascii(name)[1:-1]})"


def _refuse_look_alike_folders(root: Path, names: list[str]) -> None:
    """Stop when class folder names differ only by letter case or Unicode normalisation.

    'café' typed on Linux (NFC) and 'café' copied from macOS (NFD) are different folder
    names to Linux but look identical, and 'Cat'/'cat' are one folder on macOS and
    Windows: training them as separate classes gives labels that cannot be told apart,
    and moving the dataset would silently merge them. Refusing, with the names, is safer
    than choosing which images belong together.
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_clash_key(name), []).append(name)
    clashes = [group for group in groups.values() if len(group) > 1]
    if clashes:
        listed = "; ".join(" and ".join(repr(_spelled(name)) for name in group) for group in clashes)
        raise DatasetError(
            f"class folders in {root} differ only by letter case or Unicode normalisation: {listed}. "
            "They would train as separate classes with identical-looking labels (and are one "
            "folder on macOS and Windows); rename them, or merge them into one folder"
        )


def _reason(path: str | os.PathLike[str], error: ImageReadError) -> str:
    """The loader's message without the file name it starts with (the path is listed beside it)."""
    text, prefix = str(error), f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path) -> str:
    """A path as text that can be written anywhere: undecodable bytes appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _check_readable(path: Path) -> str | None:
    """None if the image decodes, else why not, in one line."""
    if not _utf8(str(path)):
        # TensorFlow's string tensors, the exported labels and the reports all need UTF-8.
        return "the file name is not valid UTF-8 (rename the file to train on it)"
    try:
        load_image_rgb(path)
    except ImageReadError as error:
        return _reason(path, error)
    except Exception as error:  # noqa: BLE001 - one odd file must not stop the scan of thousands
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"could not be decoded ({type(error).__name__}: {first})"
    return None


def scan_class_folders(root: str | os.PathLike[str], class_names: list[str] | None = None) -> ScannedFolder:
    """One sub-folder per class; files in nested folders count for their top-level class.

    Every image is decoded once here so that corrupt files are reported before training
    starts. `class_names` pins the label order (a validation folder must match training).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    _refuse_look_alike_folders(root, [folder.name for folder in folders])
    if class_names is None:
        class_names = [unicodedata.normalize("NFC", folder.name) for folder in folders]  # labels stored NFC
    if not class_names:
        raise DatasetError(
            f"{root} holds no class folders: put the images in one sub-folder per class, "
            f"e.g. {root}/cat/*.jpg and {root}/dog/*.jpg"
        )
    for name in class_names:
        if not _utf8(name):
            raise DatasetError(f"class folder name is not valid UTF-8: {_shown(root / name)} (rename it)")
    # Matched by NFC spelling, so a validation folder made on macOS (NFD) finds its classes.
    by_name = {unicodedata.normalize("NFC", folder.name): folder for folder in folders}
    candidates: list[tuple[Path, int]] = []
    unlisted: list[tuple[Path, str]] = []
    for label, name in enumerate(class_names):
        folder = by_name.get(unicodedata.normalize("NFC", name))
        if folder is not None:
            images, unreadable = _images_under(folder)
            candidates.extend((path, label) for path in images)
            unlisted.extend(unreadable)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        problems = list(pool.map(lambda item: _check_readable(item[0]), candidates))
    samples, skipped = [], []
    for (path, label), problem in zip(candidates, problems):
        if problem is None:
            samples.append(Sample(str(path), label))
        else:
            skipped.append((str(path) if _utf8(str(path)) else _shown(path), problem))
    skipped.extend((str(path) if _utf8(str(path)) else _shown(path), reason) for path, reason in unlisted)
    return ScannedFolder(class_names, samples, skipped)


# Folder names that say which part of a dataset a folder is, not what the dataset is about.
GENERIC_FOLDER_NAMES = frozenset(
    {
        "train",
        "training",
        "trainset",
        "train_set",
        "training_set",
        "training_data",
        "train_data",
        "train_images",
        "data",
        "dataset",
        "datasets",
        "images",
        "imgs",
        "img",
        "pictures",
        "photos",
        "all",
        "classes",
        "labelled",
        "labeled",
        "raw",
        "full",
        "source",
        "input",
        "inputs",
    }
)


def default_dataset_name(data_dir: str | os.PathLike[str]) -> str:
    """The name a run records for its dataset (the app shows "Training: NAME").

    The data folder's own name, unless it is a generic one such as "train" or "images"
    that says which part of a dataset the folder is: then its parent's (flowers/train ->
    "flowers"). Only one level up, so ~/data/train never becomes the user's name.
    """
    folder = Path(data_dir).resolve()
    parent = folder.parent.name
    if _generic(folder.name) and parent and not _generic(parent):
        return parent
    return folder.name or str(folder)


def _generic(name: str) -> bool:
    return name.lower().replace("-", "_").replace(" ", "_") in GENERIC_FOLDER_NAMES


def validate_for_training(scanned: ScannedFolder, root: str | os.PathLike[str]) -> None:
    """Stop before any training with a message that says what to fix."""
    if not scanned.samples:
        raise DatasetError(f"{root} contains no readable images")
    if len(scanned.class_names) < 2:
        raise DatasetError(
            f"{root} has a single class ({scanned.class_names[0]!r}); a classifier needs at least two class folders"
        )
    empty = [name for name, count in scanned.counts().items() if count == 0]
    if empty:
        raise DatasetError(f"class folder(s) with no readable images in {root}: {', '.join(empty)}")


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
        n_val = max(1, int(round(len(group) * val_fraction))) if len(group) > 1 else 0
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
):
    """A tf.data pipeline of (float32 RGB 0..255, one-hot label[, sample weight]) batches.

    Decoded images are cached in memory before augmentation, so every epoch sees fresh
    random variants without decoding files again. Augmentation layers run here, in the
    input pipeline, and so never end up in the exported model. With several
    `output_names` (auxiliary classifiers) the label is repeated for each output.
    """
    import tensorflow as tf

    paths = np.array([s.path for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int32)

    def decode(path: bytes) -> np.ndarray:
        try:
            return load_image_for_model(path.decode("utf-8"), image_size, image_size)
        except ImageReadError as error:
            # The file changed since the scan. A blank image keeps the run alive (and keeps
            # cached features aligned with their labels); say so rather than train on it quietly.
            print(
                f"warning: {error} (changed since the scan; a blank image stands in for it)",
                file=sys.stderr,
                flush=True,
            )
            return np.zeros((image_size, image_size, 3), np.uint8)

    def load(path, label):
        image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        image.set_shape((image_size, image_size, 3))
        return tf.cast(image, tf.float32), label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augmentation is not None:
        dataset = dataset.map(
            lambda images, y: (augmentation(images, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.map(label_encoder(num_classes, output_names, class_weights)).prefetch(tf.data.AUTOTUNE)


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
