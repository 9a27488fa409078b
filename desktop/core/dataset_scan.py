"""What a dataset folder holds, and what is wrong with it, before anyone trains on it.

The Train tab shows this for the folder the user picks: each class with its image count
and a few sample paths for thumbnails; files the decoder cannot read, with the decoder's
own reason (convnet_common.class_folders.read_problem, so the words match what
`convnet-train` prints); exact duplicates; and warnings. Class folders, images, hidden
folders and look-alike names follow training's rules, imported from the same module, so
what the tab counts is what a run trains on. Nothing is modified.

Duplicates are exact byte copies. Only files whose size another image shares are hashed
(SHA-256 in 1 MiB chunks, never a whole file in memory), so a dataset without copies
costs one stat per file. A copy inside one class counts twice (and, split across training
and validation, flatters validation accuracy); the same image in two classes is a label
conflict: the network is told two answers for one picture.

Thresholds (module constants, so a view or test can quote them):

- IMBALANCE_WARN_RATIO = 3: warn when the largest class has more than 3x the images of
  another. Training weights classes on its own from 1.5x (`--class-weights auto`), which
  handles mild imbalance; past about 3x a network still leans to the big class, and more
  images of the small ones is the fix worth suggesting. The warning names the small
  classes and each one's ratio to the largest.
- MIN_IMAGES_TO_SPLIT = 2 (training's rule): below it a class gives no image to
  validation. FEW_IMAGES = 10: below it validation gets one or two images of the class at
  the default 20 %, so its accuracy means little; a gentler warning.
- Fewer than two classes, a class with no readable image, look-alike or non-UTF-8 class
  names: training refuses these; their warnings have `blocks_training` set.

A scan is long on a big folder: `progress(done, total)` is called per image (total 0
while the folders are still being listed), and `cancel` (a threading.Event or anything
with is_set()) stops it between files with ScanCancelled.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from convnet_common.class_folders import (
    MIN_IMAGES_TO_SPLIT,
    ClassFiles,
    class_folders,
    decode_workers,
    describe_look_alikes,
    is_utf8,
    label_of,
    listed,
    look_alike_groups,
    no_classes_message,
    read_problem,
    walk_class_folder,
)
from convnet_common.imaging import is_image_file

IMBALANCE_WARN_RATIO = 3.0
FEW_IMAGES = 10
SAMPLES_PER_CLASS = 6
HASH_CHUNK_BYTES = 1 << 20
# Files every OS drops into folders; not worth a "not an image" warning.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})
NAMES_IN_A_MESSAGE = 5


class ScanCancelled(Exception):
    """The scan was cancelled; there is no result."""


class _Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class ClassInfo:
    """One class: its label (NFC, as training stores it), folder, readable images, samples."""

    name: str
    folder: Path
    count: int
    unreadable: int
    samples: tuple[Path, ...]


@dataclass(frozen=True)
class DuplicateGroup:
    """Byte-identical images (two or more), with the class of each path."""

    paths: tuple[Path, ...]
    classes: tuple[str, ...]

    @property
    def label_conflict(self) -> bool:
        return len(set(self.classes)) > 1


@dataclass(frozen=True)
class DatasetWarning:
    """One thing to tell the user. `kind` is one of KINDS; `paths` are what it is about."""

    kind: str
    message: str
    paths: tuple[Path, ...] = ()
    blocks_training: bool = False


KINDS = (
    "empty",
    "one_class",
    "bad_name",
    "look_alike",
    "empty_class",
    "too_small",
    "few",
    "imbalance",
    "label_conflict",
    "duplicate",
    "unreadable",
    "unreadable_folder",
    "not_images",
    "loose_files",
)


@dataclass
class DatasetScan:
    root: Path
    classes: list[ClassInfo] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    not_images: list[Path] = field(default_factory=list)
    warnings: list[DatasetWarning] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {info.name: info.count for info in self.classes}

    @property
    def total_images(self) -> int:
        return sum(info.count for info in self.classes)

    @property
    def label_conflicts(self) -> list[DuplicateGroup]:
        return [group for group in self.duplicates if group.label_conflict]

    @property
    def trainable(self) -> bool:
        """Whether `convnet-train` would accept the folder (it may still train badly)."""
        return not any(warning.blocks_training for warning in self.warnings)

    def warnings_of(self, kind: str) -> list[DatasetWarning]:
        return [warning for warning in self.warnings if warning.kind == kind]


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in HASH_CHUNK_BYTES pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):
        return None


def _evenly(paths: list[Path], count: int) -> tuple[Path, ...]:
    """`count` paths spread over the list, so the thumbnails show more than its first folder."""
    if len(paths) <= count:
        return tuple(paths)
    return tuple(paths[i * (len(paths) - 1) // (count - 1)] for i in range(count))


def _names(paths: list[Path] | tuple[Path, ...]) -> str:
    shown = ", ".join(listed(Path(p.name)) for p in paths[:NAMES_IN_A_MESSAGE])
    more = len(paths) - NAMES_IN_A_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def _check(path: Path, hash_it: bool) -> tuple[str | None, str | None]:
    """(decoder's problem or None, SHA-256 when readable and asked for)."""
    problem = read_problem(path)
    if problem is not None or not hash_it:
        return problem, None
    try:
        return None, file_digest(path)
    except OSError:
        return None, None  # decoded a moment ago; gone now: not a duplicate of anything


def _cancelled(cancel: _Flag | None) -> bool:
    return cancel is not None and cancel.is_set()


def _loose_files(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if not p.name.startswith(".") and not p.is_dir())
    except OSError:
        return []


def scan_dataset(
    path: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
    cancel: _Flag | None = None,
) -> DatasetScan:
    """Scan a dataset folder (see the module docstring). Raises NotADirectoryError or
    FileNotFoundError for a path that is not a folder, ScanCancelled when cancelled."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    scan = DatasetScan(root)
    if progress is not None:
        progress(0, 0)
    folders = class_folders(root)
    walked: list[tuple[str, Path, ClassFiles]] = []
    for folder in folders:
        if _cancelled(cancel):
            raise ScanCancelled()
        walked.append((label_of(folder.name), folder, walk_class_folder(folder)))
    images = [(index, image) for index, (_, _, found) in enumerate(walked) for image in found.images]
    sizes: dict[int, int] = defaultdict(int)
    image_sizes = [_size(image) for _, image in images]
    for size in image_sizes:
        if size:
            sizes[size] += 1
    hash_it = [bool(size) and sizes[size] > 1 for size in image_sizes]

    readable: list[list[Path]] = [[] for _ in walked]
    unreadable_counts = [0] * len(walked)
    by_digest: dict[str, list[tuple[Path, int]]] = defaultdict(list)
    pool = ThreadPoolExecutor(max_workers=decode_workers())
    try:
        results = pool.map(_check, [image for _, image in images], hash_it)
        for done, ((index, image), (problem, digest)) in enumerate(zip(images, results), start=1):
            if _cancelled(cancel):
                raise ScanCancelled()
            if problem is None:
                readable[index].append(image)
                if digest is not None:
                    by_digest[digest].append((image, index))
            else:
                unreadable_counts[index] += 1
                scan.unreadable.append((image, problem))
            if progress is not None:
                progress(done, len(images))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    for index, (name, folder, found) in enumerate(walked):
        scan.classes.append(
            ClassInfo(
                name,
                folder,
                len(readable[index]),
                unreadable_counts[index],
                _evenly(readable[index], SAMPLES_PER_CLASS),
            )
        )
        scan.not_images.extend(p for p in found.others if not _system_file(p))
    for copies in by_digest.values():
        if len(copies) > 1:
            paths = tuple(path for path, _ in copies)
            scan.duplicates.append(DuplicateGroup(paths, tuple(walked[index][0] for _, index in copies)))
    scan.warnings = _warnings(scan, walked, _loose_files(root))
    return scan


def _system_file(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower() in SYSTEM_FILES


def _warnings(scan: DatasetScan, walked: list[tuple[str, Path, ClassFiles]], loose: list[Path]) -> list[DatasetWarning]:
    """Every warning, most serious first: what training refuses, then what trains badly."""
    out: list[DatasetWarning] = []
    root, classes = scan.root, scan.classes

    def add(kind: str, message: str, paths=(), blocks: bool = False) -> None:
        out.append(DatasetWarning(kind, message, tuple(paths), blocks))

    if not classes:
        add("empty", no_classes_message(root), blocks=True)
    elif len(classes) == 1:
        add(
            "one_class",
            f"only one class ({classes[0].name!r}): a classifier needs at least two class folders",
            blocks=True,
        )
    for info in classes:
        if not is_utf8(info.name):
            add(
                "bad_name",
                f"class folder name is not valid UTF-8: {listed(info.folder)} (rename it)",
                [info.folder],
                True,
            )
    groups = look_alike_groups([info.folder.name for info in classes])
    if groups:
        add(
            "look_alike",
            f"class folders differ only by letter case or Unicode normalisation: {describe_look_alikes(groups)}; "
            "training refuses them: rename them, or merge them into one folder",
            [root / name for group in groups for name in group],
            True,
        )
    for info in classes:
        if info.count == 0:
            add("empty_class", f"class {info.name!r} has no readable images: training refuses it", [info.folder], True)
        elif info.count < MIN_IMAGES_TO_SPLIT:
            add(
                "too_small",
                f"class {info.name!r} has {info.count} image: too few to split into training and validation "
                f"(at least {MIN_IMAGES_TO_SPLIT}); it would never be checked",
                [info.folder],
            )
        elif info.count < FEW_IMAGES:
            add(
                "few",
                f"class {info.name!r} has only {info.count} images: validation would see one or two of them "
                f"(aim for {FEW_IMAGES} or more)",
                [info.folder],
            )
    out.extend(_imbalance(classes))
    for group in scan.duplicates:
        if group.label_conflict:
            where = ", ".join(f"{listed(path)} ({name!r})" for path, name in zip(group.paths, group.classes))
            add("label_conflict", f"the same image is in {len(set(group.classes))} classes: {where}", group.paths)
        else:
            add(
                "duplicate",
                f"{len(group.paths)} copies of one image in {group.classes[0]!r}: {_names(group.paths)}",
                group.paths,
            )
    for path, reason in scan.unreadable:
        add("unreadable", f"{listed(path)}: {reason}", [path])
    for _, _, found in walked:
        for path, reason in found.unreadable_folders:
            add("unreadable_folder", f"{listed(path)}: {reason}", [path])
    if scan.not_images:
        add(
            "not_images",
            f"{len(scan.not_images)} file(s) are not images and are ignored: {_names(scan.not_images)}",
            scan.not_images,
        )
    if loose:
        images = [p for p in loose if is_image_file(p)]
        if images:
            add(
                "loose_files",
                f"{len(images)} image(s) lie directly in {listed(root)}, outside any class folder, "
                f"and are ignored: {_names(images)}",
                images,
            )
    return out


def _imbalance(classes: list[ClassInfo]) -> list[DatasetWarning]:
    counted = [info for info in classes if info.count > 0]
    if len(counted) < 2:
        return []
    largest = max(counted, key=lambda info: info.count)
    small = [info for info in counted if largest.count > IMBALANCE_WARN_RATIO * info.count]
    if not small:
        return []
    each = ", ".join(f"{info.name!r} {info.count} ({largest.count / info.count:.1f} to 1)" for info in small)
    return [
        DatasetWarning(
            "imbalance",
            f"classes are imbalanced: {largest.name!r} has {largest.count} images, against {each}; "
            "training weights the classes, but more images of the small ones works better",
            tuple(info.folder for info in small),
        )
    ]
