"""The class-folder rules, written once: what `convnet-train` trains on is what the app shows.

A dataset is a folder with one sub-folder per class. Training (training.data) and the
app's Train tab (desktop.core.dataset_scan) both read it, and desktop may not import
training; so every rule about what counts lives here, free of TensorFlow:

- class folders are the dataset's sub-folders, sorted by name, hidden ones ('.name')
  left out; links to folders count (a linked class), but inside a class linked folders
  are not entered (no loops, no repeats);
- files in nested folders count for their top-level class, in os.walk order (a folder's
  files, then its sub-folders, each sorted), which seeded splits depend on;
- an image is a file with one of convnet_common.imaging's IMAGE_EXTENSIONS that the one
  decoder reads; anything else is skipped with the decoder's one-line reason;
- class labels are stored NFC; names that differ only by letter case or Unicode
  normalisation are refused (see `look_alike_groups`), as are names that are not UTF-8;
- a class needs MIN_IMAGES_TO_SPLIT images to give one to validation (`validation_count`).
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from convnet_common.folder_walk import UnreadableFolder, walk_files
from convnet_common.imaging import ImageReadError, is_image_file, load_image_rgb

# A class with fewer readable images than this gives none to validation: its single
# image trains but is never checked (training.data.split_samples).
MIN_IMAGES_TO_SPLIT = 2


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


@dataclass
class ClassFiles:
    """What one walk of a class folder found: images (by extension), other files, and
    folders that could not be listed (with why), each in walk order."""

    images: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)
    unreadable_folders: list[tuple[Path, str]] = field(default_factory=list)


def class_folders(root: str | os.PathLike[str]) -> list[Path]:
    """The class folders of a dataset: its sub-folders, sorted, hidden ones left out."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))


def label_of(folder_name: str) -> str:
    """The class label a folder name gives (NFC, so macOS's NFD names match Linux's)."""
    return unicodedata.normalize("NFC", folder_name)


def walk_class_folder(folder: Path, wanted: Callable[[str], bool] | None = None) -> ClassFiles:
    """Every file below `folder` (those `wanted` accepts, all by default), sorted into images
    and other files, through the shared iterative walker (convnet_common.folder_walk).

    No recursion limit however deep the folders nest. A linked folder is not entered; links
    to files are listed whatever they point at, so a broken or looping one is reported with
    its reason like any other unreadable file. A folder that cannot be listed is reported
    instead of silently losing what is inside.
    """
    found = ClassFiles()
    for item in walk_files(folder, wanted or (lambda _name: True), follow_folder_links=False, files_first=True):
        if isinstance(item, UnreadableFolder):
            found.unreadable_folders.append((item.path, item.reason))
        elif is_image_file(item):
            found.images.append(item)
        else:
            found.others.append(item)
    return found


def clash_key(name: str) -> str:
    """Names that look alike, or merge on macOS/Windows file systems, share this key."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def spelled(name: str) -> str:
    """A name with its code points visible, so that NFC and NFD spellings can be told apart."""
    return name if name.isascii() else f"{name} ({ascii(name)[1:-1]})"


def look_alike_groups(names: list[str]) -> list[list[str]]:
    """Groups of names that differ only by letter case or Unicode normalisation.

    'café' typed on Linux (NFC) and 'café' copied from macOS (NFD) are different folder
    names to Linux but look identical, and 'Cat'/'cat' are one folder on macOS and
    Windows: trained as separate classes they give labels that cannot be told apart.
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(clash_key(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def describe_look_alikes(groups: list[list[str]]) -> str:
    """'a' and 'A'; 'café (caf\\xe9)' and ... : each group's names, code points visible."""
    return "; ".join(" and ".join(repr(spelled(name)) for name in group) for group in groups)


def refuse_look_alike_folders(root: Path, names: list[str]) -> None:
    """Stop when class folder names look alike: refusing, with the names, is safer than
    choosing which images belong together (moving the dataset would merge them silently)."""
    clashes = look_alike_groups(names)
    if clashes:
        raise DatasetError(
            f"class folders in {root} differ only by letter case or Unicode normalisation: "
            f"{describe_look_alikes(clashes)}. "
            "They would train as separate classes with identical-looking labels (and are one "
            "folder on macOS and Windows); rename them, or merge them into one folder"
        )


def is_utf8(text: str) -> bool:
    """TensorFlow's string tensors, the exported labels and the reports all need UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(path: Path) -> str:
    """A path as text that can be written anywhere: undecodable bytes appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def listed(path: Path) -> str:
    """A path as a report lists it: as it is when it is UTF-8, else with \\xNN escapes."""
    return str(path) if is_utf8(str(path)) else shown(path)


def error_reason(path: str | os.PathLike[str], error: ImageReadError) -> str:
    """The loader's message without the file name it starts with (the path is listed beside it)."""
    text, prefix = str(error), f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


NOT_UTF8_FILE = "the file name is not valid UTF-8 (rename the file to train on it)"


def read_problem(path: Path) -> str | None:
    """None if the image decodes (with the decoder training and the app share), else why not."""
    if not is_utf8(str(path)):
        return NOT_UTF8_FILE
    try:
        load_image_rgb(path)
    except ImageReadError as error:
        return error_reason(path, error)
    except Exception as error:  # noqa: BLE001 - one odd file must not stop the scan of thousands
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"could not be decoded ({type(error).__name__}: {first})"
    return None


def decode_workers() -> int:
    """Threads that decode at once: OpenCV releases the GIL, and more than 8 only adds memory."""
    return min(8, (os.cpu_count() or 2) * 2)


def no_classes_message(root: Path) -> str:
    return (
        f"{root} holds no class folders: put the images in one sub-folder per class, "
        f"e.g. {root}/cat/*.jpg and {root}/dog/*.jpg"
    )


def scan_class_folders(root: str | os.PathLike[str], class_names: list[str] | None = None) -> ScannedFolder:
    """One sub-folder per class; files in nested folders count for their top-level class.

    Every image is decoded once here so that corrupt files are reported before training
    starts. `class_names` pins the label order (a validation folder must match training).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    folders = class_folders(root)
    refuse_look_alike_folders(root, [folder.name for folder in folders])
    if class_names is None:
        class_names = [label_of(folder.name) for folder in folders]  # labels stored NFC
    if not class_names:
        raise DatasetError(no_classes_message(root))
    for name in class_names:
        if not is_utf8(name):
            raise DatasetError(f"class folder name is not valid UTF-8: {shown(root / name)} (rename it)")
    # Matched by NFC spelling, so a validation folder made on macOS (NFD) finds its classes.
    by_name = {label_of(folder.name): folder for folder in folders}
    candidates: list[tuple[Path, int]] = []
    unlisted: list[tuple[Path, str]] = []
    for label, name in enumerate(class_names):
        folder = by_name.get(label_of(name))
        if folder is not None:
            found = walk_class_folder(folder, is_image_file)
            candidates.extend((path, label) for path in found.images)
            unlisted.extend(found.unreadable_folders)
    with ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        problems = list(pool.map(lambda item: read_problem(item[0]), candidates))
    samples, skipped = [], []
    for (path, label), problem in zip(candidates, problems):
        if problem is None:
            samples.append(Sample(str(path), label))
        else:
            skipped.append((listed(path), problem))
    skipped.extend((listed(path), reason) for path, reason in unlisted)
    return ScannedFolder(class_names, samples, skipped)


def validation_count(images: int, val_fraction: float) -> int:
    """How many of a class's images a seeded split gives to validation: the fraction,
    rounded, at least one; none for a class below MIN_IMAGES_TO_SPLIT."""
    if images < MIN_IMAGES_TO_SPLIT:
        return 0
    return max(1, int(round(images * val_fraction)))


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
