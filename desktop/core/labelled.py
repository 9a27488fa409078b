"""Labelled folders: when a batch folder's sub-folders are named after the model's classes.

People keep test images as `photos/cat/…`, `photos/dog/…` (or get that layout from
"Sort into folders"). Such a folder already says what each image is, so a run over it
can say how often the model is right, per class and overall, instead of predictions
alone. Nothing here touches Qt: the Batch tab, the exports and convnet-classify share it.

Deciding that a folder is labelled:
- only its immediate sub-folders are names; the true class of a file is the first
  folder under the root on its path (`photos/cat/2023/x.jpg` is a cat);
- a name matches a class case-insensitively, with runs of spaces, `_` and `-` counted
  as one space, and also in the form sort_into_folders writes it (safe_folder_name), so
  "tabby_cat", "Tabby Cat" and a sorted "tabby cat" folder all mean "tabby cat". Where
  two classes collide that way, only an exact spelling decides; otherwise it is no match;
- at least MIN_CLASS_FOLDERS sub-folders must match (one matching name among dated
  folders is a coincidence, not a labelling), and at least that many of them must hold
  an image. Files in other places (the root, `_unsure/`, `2023/`) have no true class:
  they are classified as usual and counted as unlabelled, never as mistakes.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from desktop.core.batch import BatchResult, iter_image_files
from desktop.core.sorting import safe_folder_name

MIN_CLASS_FOLDERS = 2
_SEPARATORS = re.compile(r"[\s_-]+")


def _key(name: str) -> str:
    return _SEPARATORS.sub(" ", name).strip().casefold()


def match_folder_names(names: Iterable[str], labels: Sequence[str]) -> dict[str, str]:
    """{folder name: class label} for the names that stand for exactly one class."""
    by_key: dict[str, set[str]] = {}
    for label in labels:
        for spelling in {label, safe_folder_name(label)}:
            by_key.setdefault(_key(spelling), set()).add(label)
    exact = set(labels)
    matched = {}
    for name in names:
        if name in exact:
            matched[name] = name
            continue
        candidates = by_key.get(_key(name), set())
        if len(candidates) == 1:
            matched[name] = next(iter(candidates))
    return matched


@dataclass(frozen=True)
class FolderLabels:
    """The class folders of one labelled root: the true class of any file under it."""

    root: Path
    folders: dict[str, str]  # sub-folder name -> class label

    def true_label(self, path: str | os.PathLike[str]) -> str | None:
        """The class a file's first folder under the root names, or None (not in a class folder)."""
        try:
            parts = Path(path).relative_to(self.root).parts
        except ValueError:
            return None
        return self.folders.get(parts[0]) if len(parts) > 1 else None

    @property
    def classes(self) -> list[str]:
        """The classes that have a folder, sorted by name."""
        return sorted(set(self.folders.values()))


def _holds_an_image(folder: Path) -> bool:
    return next(iter(iter_image_files([folder])), None) is not None


def _sub_folders(root: Path) -> list[str]:
    """Names of the visible sub-folders (links to folders included); unreadable entries are skipped."""
    names = []
    with os.scandir(root) as entries:
        for entry in entries:
            try:
                if entry.is_dir() and not entry.name.startswith("."):
                    names.append(entry.name)
            except OSError:  # a link loop or a vanished entry: not a class folder
                continue
    return sorted(names)


def detect_labelled_folder(folder: str | os.PathLike[str], labels: Sequence[str]) -> FolderLabels | None:
    """FolderLabels when `folder`'s sub-folders are named after `labels` (see the module docstring).

    Reads one directory listing, and walks each matching sub-folder only until its first
    image: cheap, but still file-system work, so callers run it off the GUI thread.
    """
    root = Path(folder)
    try:
        names = _sub_folders(root)
    except OSError:  # not a folder, gone, or not readable: nothing to learn from it
        return None
    matched = match_folder_names(names, labels)
    if len(matched) < MIN_CLASS_FOLDERS:
        return None
    with_images = {name: label for name, label in matched.items() if _holds_an_image(root / name)}
    if len(with_images) < MIN_CLASS_FOLDERS:
        return None
    return FolderLabels(root, with_images)


@dataclass
class ClassTally:
    """One true class: images classified, how many right, and what the wrong ones were called."""

    label: str
    images: int = 0
    correct: int = 0
    unreadable: int = 0
    mistaken_for: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.images if self.images else None

    @property
    def top_confusion(self) -> tuple[str, int] | None:
        """(class most often predicted instead, how often), or None without mistakes."""
        if not self.mistaken_for:
            return None
        # Ties go to the name that sorts first, so the answer does not depend on arrival order.
        return min(self.mistaken_for.items(), key=lambda item: (-item[1], item[0]))


class AccuracyTally:
    """Running accuracy of a batch over a labelled folder; add results as they arrive.

    Only classified files with a true class count towards accuracy. Unreadable files in
    class folders are counted per class but are neither right nor wrong; files outside
    class folders are only counted.
    """

    def __init__(self, labels: FolderLabels) -> None:
        self.labels = labels
        self.classes = {label: ClassTally(label) for label in labels.classes}
        self.unlabelled = 0
        self._seen: set[str] = set()

    def add(self, results: Iterable[BatchResult]) -> None:
        for result in results:
            key = str(result.path)
            if key in self._seen:  # a file classified again (a resumed run) counts once
                continue
            self._seen.add(key)
            truth = self.labels.true_label(result.path)
            if truth is None:
                self.unlabelled += 1
                continue
            tally = self.classes[truth]
            if not result.ok:
                tally.unreadable += 1
                continue
            tally.images += 1
            if result.label == truth:
                tally.correct += 1
            elif result.label is not None:
                tally.mistaken_for[result.label] += 1

    @property
    def images(self) -> int:
        return sum(t.images for t in self.classes.values())

    @property
    def correct(self) -> int:
        return sum(t.correct for t in self.classes.values())

    @property
    def unreadable(self) -> int:
        return sum(t.unreadable for t in self.classes.values())

    @property
    def accuracy(self) -> float | None:
        images = self.images
        return self.correct / images if images else None

    def summary(self) -> str:
        """One line: 'Accuracy 91.7 % (22 of 24 labelled images, 3 classes) · …'."""
        accuracy = self.accuracy
        if accuracy is None:
            text = f"Labelled folder ({len(self.classes)} classes): no labelled image classified yet"
        else:
            text = (
                f"Accuracy {accuracy * 100:.1f} % ({self.correct} of {self.images} labelled images, "
                f"{len(self.classes)} classes)"
            )
        if self.unreadable:
            text += f" · {self.unreadable} unreadable"
        if self.unlabelled:
            text += f" · {self.unlabelled} not in a class folder"
        return text

    def to_dict(self) -> dict[str, object]:
        """The tally as plain data, for JSON exports."""
        per_class = []
        for tally in self.classes.values():
            confusion = tally.top_confusion
            per_class.append(
                {
                    "label": tally.label,
                    "images": tally.images,
                    "correct": tally.correct,
                    "accuracy": tally.accuracy,
                    "unreadable": tally.unreadable,
                    "most_confused_with": confusion[0] if confusion else None,
                    "most_confused_count": confusion[1] if confusion else 0,
                }
            )
        return {
            "accuracy": self.accuracy,
            "images": self.images,
            "correct": self.correct,
            "unreadable": self.unreadable,
            "unlabelled": self.unlabelled,
            "folders": dict(self.labels.folders),
            "per_class": per_class,
        }
