"""Label new images with a model: classify a folder, review the least certain first, add to the dataset.

Growing a dataset by hand is slow because every image needs a decision. A model that is
already partly trained can propose one: the user then only confirms or corrects, and
should spend that attention where the model is least sure, since those are the images
it would learn most from (and get wrong most often). So:

- `classify_folder` runs the Batch engine (desktop.core.batch.run_batch: one worker per
  core, large JPEGs decoded small, unreadable files become results with a reason) over a
  folder of unlabelled images. Files that cannot be read are listed with their reason in
  `unreadable`, never dropped.
- Order: smallest *margin* between the top-1 and top-2 probabilities first (ties: lower
  top-1 confidence, then path). Margin, not top-1 confidence, because what a label fixes
  is the model hesitating between classes: with ten classes, top-1 0.40 against 0.05 is a
  clear choice, while 0.40 against 0.38 is a coin toss that top-1 ranks the same. For two
  classes both orders are the same (margin = 2 p - 1). A one-class model has margin = p.
- `LabellingSession` holds, per image, the suggestion and the user's decision (accepted,
  corrected to a class, skipped); `commit(dataset)` copies the decided images into
  DATASET/<class>/ with DatasetEdits.add_images: copies, never overwriting (a taken name
  becomes "x (1).png"), journaled, so DatasetEdits(dataset).undo_last/undo_all take them
  out again. Images already committed are not copied twice.

Model classes and dataset classes may differ (a model trained on an older version of the
dataset, or a downloaded one). Rule: the classes offered are the dataset's class folders.
A model class is matched to a folder by the Batch tab's rule (desktop.core.labelled:
case, spaces, `_` and `-` do not matter); a suggestion of a model class with no folder
cannot be accepted as it is, the user corrects it, or asks for the class to be added
(`add_class`), which makes the folder on commit. New names follow the class-folder rules
(`class_name_problem`): one folder name, UTF-8, portable, and never a look-alike of an
existing class (training would refuse the dataset).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from convnet_common.class_folders import clash_key, class_folders, describe_look_alikes, is_utf8
from desktop.core.batch import BatchProgress, run_batch
from desktop.core.classifier import Classifier
from desktop.core.dataset_edits import DatasetEditError, DatasetEdits
from desktop.core.labelled import match_folder_names

__all__ = [
    "ACCEPTED",
    "CORRECTED",
    "SKIPPED",
    "CommitReport",
    "Decision",
    "LabellingError",
    "LabellingSession",
    "Suggestion",
    "class_name_problem",
    "classify_folder",
    "dataset_classes",
    "uncertainty_key",
]

ACCEPTED, CORRECTED, SKIPPED = "accepted", "corrected", "skipped"
TOP_K = 5
# Characters no class folder may hold: separators, and what Windows or macOS refuse in a name,
# so a dataset made here can be copied anywhere and trained on.
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class LabellingError(ValueError):
    """A decision or class that cannot be taken; the message says why."""


def class_name_problem(name: str, existing: list[str]) -> str | None:
    """Why `name` cannot be a new class folder beside `existing` ones (None: it can).

    An exact existing name is fine (it is that class). A name that differs from an
    existing one only by case or Unicode normalisation is refused: training refuses
    look-alike class folders (convnet_common.class_folders.look_alike_groups).
    """
    if not name or name != name.strip():
        return "a class name cannot be empty or start or end with a space"
    if name in existing:
        return None
    if name in (".", "..") or name.startswith("."):
        return "a class name cannot start with '.' (hidden folders are not classes)"
    if _BAD_CHARS.search(name):
        return 'a class name cannot contain / \\ : * ? " < > | or control characters'
    if not is_utf8(name):
        return "a class name must be valid UTF-8"
    if name.rstrip(".").lower() in _RESERVED or name.endswith("."):
        return f"{name!r} is not a folder name Windows accepts"
    if len(name.encode("utf-8")) > 200:
        return "a class name must be shorter than 200 bytes"
    twins = [other for other in existing if clash_key(other) == clash_key(name)]
    if twins:
        return (
            f"{describe_look_alikes([[name, *twins]])} differ only by letter case or Unicode "
            f"normalisation; use the existing class {twins[0]!r}"
        )
    return None


def dataset_classes(dataset: str | os.PathLike[str]) -> list[str]:
    """The dataset's class folders' names, sorted (training's order); [] when it has none yet."""
    try:
        return [folder.name for folder in class_folders(dataset)]
    except OSError:
        return []


@dataclass(frozen=True)
class Suggestion:
    """One image and what the model says it is (or why it could not be read)."""

    path: Path
    label: str | None
    confidence: float | None
    margin: float | None
    top_k: tuple[tuple[str, float], ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def uncertainty_key(suggestion: Suggestion) -> tuple[float, float, str]:
    """Sort key: smallest top-1/top-2 margin first, then lowest confidence, then path."""
    return (
        suggestion.margin if suggestion.margin is not None else 2.0,
        suggestion.confidence or 0.0,
        str(suggestion.path),
    )


def _suggestion(path: Path, top_k: tuple[tuple[str, float], ...], error: str | None) -> Suggestion:
    if error is not None or not top_k:
        return Suggestion(path, None, None, None, (), error or "no prediction")
    first = top_k[0][1]
    second = top_k[1][1] if len(top_k) > 1 else 0.0
    return Suggestion(path, top_k[0][0], first, first - second, top_k)


def classify_folder(
    classifier: Classifier,
    folder: str | os.PathLike[str],
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
) -> tuple[list[Suggestion], list[tuple[Path, str]]]:
    """(readable images least certain first, [(unreadable file, why)]) for every image under `folder`.

    Cancelling keeps what was classified so far (the Batch engine stops after a chunk).
    """
    readable: list[Suggestion] = []
    unreadable: list[tuple[Path, str]] = []
    for results in run_batch(classifier, [folder], top_k=TOP_K, cancel=cancel, progress=progress):
        for result in results:
            suggestion = _suggestion(result.path, result.top_k, result.error)
            if suggestion.ok:
                readable.append(suggestion)
            else:
                unreadable.append((result.path, suggestion.error or "unreadable"))
    readable.sort(key=uncertainty_key)
    return readable, unreadable


@dataclass(frozen=True)
class Decision:
    """What the user decided for one image: `kind` ACCEPTED / CORRECTED (to `label`) / SKIPPED."""

    kind: str
    label: str | None = None


@dataclass
class CommitReport:
    """What a commit did: images added per class (their new paths), and (image, why) not added."""

    added: dict[str, list[Path]] = field(default_factory=dict)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: int = 0

    @property
    def added_count(self) -> int:
        return sum(len(paths) for paths in self.added.values())

    def summary(self) -> str:
        parts = [f"Added {self.added_count} image(s)"]
        if self.added:
            parts[0] += " (" + ", ".join(f"{name}: {len(paths)}" for name, paths in self.added.items()) + ")"
        if self.failed:
            parts.append(f"{len(self.failed)} could not be added")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        text = "; ".join(parts) + "."
        if self.added:
            text += " The copies are journaled and can be undone."
        return text


class LabellingSession:
    """The suggestions of one classified folder and the user's decisions (see the module docstring).

    Items are addressed by their index in `items` (least certain first).
    """

    def __init__(
        self,
        items: list[Suggestion],
        classes: list[str],
        model_classes: list[str] | tuple[str, ...] = (),
        unreadable: list[tuple[Path, str]] | None = None,
    ) -> None:
        self.items = list(items)
        self.classes = list(classes)  # the classes offered: the dataset's folders, then added ones
        self.model_classes = list(model_classes)
        self.unreadable = list(unreadable or [])
        self.decisions: dict[int, Decision] = {}
        self.committed: set[int] = set()

    # classes ---------------------------------------------------------------------------
    def class_for(self, model_label: str | None) -> str | None:
        """The offered class a model class stands for (Batch tab's matching rule), or None."""
        if model_label is None:
            return None
        if model_label in self.classes:
            return model_label
        return {label: folder for folder, label in match_folder_names(self.classes, [model_label]).items()}.get(
            model_label
        )

    def missing_model_classes(self) -> list[str]:
        """Model classes with no class folder: their suggestions need a correction or `add_class`."""
        return [label for label in self.model_classes if self.class_for(label) is None]

    def add_class(self, name: str) -> str:
        """Offer a new class (its folder is made on commit); LabellingError if the name is refused."""
        problem = class_name_problem(name, self.classes)
        if problem is not None:
            raise LabellingError(problem)
        if name not in self.classes:
            self.classes.append(name)
        return name

    # decisions -------------------------------------------------------------------------
    def accept(self, index: int) -> Decision:
        """Take the model's suggestion; refused when its class has no folder (see add_class)."""
        item = self.items[index]
        target = self.class_for(item.label)
        if target is None:
            raise LabellingError(
                f"the model's class {item.label!r} has no folder in the dataset: choose a class, or add {item.label!r}"
            )
        return self._decide(index, Decision(ACCEPTED, target))

    def correct(self, index: int, label: str) -> Decision:
        """Put the image in class `label` (one of `classes`); the same as the suggestion counts as accepted."""
        if label not in self.classes:
            raise LabellingError(f"{label!r} is not a class of the dataset (add it first)")
        kind = ACCEPTED if self.class_for(self.items[index].label) == label else CORRECTED
        return self._decide(index, Decision(kind, label))

    def skip(self, index: int) -> Decision:
        return self._decide(index, Decision(SKIPPED))

    def clear(self, index: int) -> None:
        self.decisions.pop(index, None)

    def _decide(self, index: int, decision: Decision) -> Decision:
        if not 0 <= index < len(self.items):
            raise IndexError(index)
        self.decisions[index] = decision
        return decision

    def decision(self, index: int) -> Decision | None:
        return self.decisions.get(index)

    def next_undecided(self, after: int = -1) -> int | None:
        """The first undecided item after `after` (wrapping round), or None when all are decided."""
        count = len(self.items)
        for step in range(1, count + 1):
            index = (after + step) % count
            if index not in self.decisions and index not in self.committed:
                return index
        return None

    def pending(self) -> dict[str, list[int]]:
        """{class: item indices} decided into a class and not yet committed, in class order."""
        grouped: dict[str, list[int]] = {}
        for index in sorted(self.decisions):
            decision = self.decisions[index]
            if decision.label is not None and index not in self.committed:
                grouped.setdefault(decision.label, []).append(index)
        return {name: grouped[name] for name in self.classes if name in grouped}

    def pending_count(self) -> int:
        return sum(len(indices) for indices in self.pending().values())

    # commit ----------------------------------------------------------------------------
    def commit(self, dataset: str | os.PathLike[str]) -> CommitReport:
        """Copy every decided image into DATASET/<class>/ (never overwriting, journaled, undoable).

        One image at a time, so one that fails (gone since, unreadable, disk full or
        read-only) is reported with its reason and the rest still go in.
        """
        edits = DatasetEdits(dataset)
        report = CommitReport(skipped=sum(1 for d in self.decisions.values() if d.kind == SKIPPED))
        for name, indices in self.pending().items():
            for index in indices:
                path = self.items[index].path
                try:
                    added = edits.add_images([path], name)
                except DatasetEditError as error:
                    report.failed.append((path, str(error)))
                    continue
                report.added.setdefault(name, []).extend(added)
                self.committed.add(index)
        return report
