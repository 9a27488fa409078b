"""Changes the Train tab makes to a dataset folder, each journaled and undoable.

Fixing data is the point of the Train tab (train, see the mistakes, fix the labels,
retrain), and a dataset is often the user's only copy of their work: so nothing here
deletes or overwrites an image. Three changes:

- move an image to another class folder (a free name, "x (1).jpg", if the name is taken);
- exclude an image: moved aside into `<DATASET>.excluded/<class>/`, a sibling folder
  (inside DATASET it would be trained on as a class of its own);
- add images to a class (labelling new images, camera captures): copied, never overwriting.

The journal is `<DATASET>.excluded/.convnet-edits.jsonl`: one sibling folder holds all
the app keeps about a dataset (a hidden name, so it can never clash with a class folder
of excluded images there), and the dataset itself stays exactly the user's images. It is
the Sort journal's format and code (desktop.core.sorting: SortLog appends one fsynced
JSON line per step, a torn last line is skipped; _transfer logs "begin" before a step and
"done" after it, moves by one no-replace rename, or across file systems by copy to a
temporary name, rename, then removal of the source). A change whose "done" line is
missing (a crash mid-step) is still undoable: undo looks at where the file is.

undo_last() and undo_all() (newest first) put files back and say, per change, what was
done and what could not be: a file no longer where the change put it, an original place
now taken by another file (left alone, never overwritten), an added image changed since
(its SHA-256 is journaled; only an unchanged copy is removed). A folder a change created
is removed on undo once it is empty again, so undo leaves the dataset as it was.

A change that fails (read-only folder, full disk, no permission) raises DatasetEditError
saying so, and leaves the file where it was: a copy that got made is removed again, and
the journal records the attempt as failed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from convnet_common.class_folders import clash_key, class_folders
from convnet_common.imaging import is_image_file
from desktop.core.dataset_scan import file_digest
from desktop.core.sorting import SortLog, _identical, _is_temp_of, _transfer, free_name

__all__ = ["JOURNAL_NAME", "DatasetEditError", "DatasetEdits", "Edit", "UndoReport", "excluded_folder", "read_journal"]


JOURNAL_NAME = ".convnet-edits.jsonl"
OPS = ("move", "exclude", "add")


@dataclass(frozen=True)
class Edit:
    """One change from the journal: `op` (move, exclude, add) took `src` to `dst`."""

    op: str
    src: Path
    dst: Path
    sha256: str | None = None  # of an added copy: only an unchanged one is removed by undo
    created: tuple[Path, ...] = ()  # folders made for it, removed by undo once empty

    def describe(self) -> str:
        verb = {"move": "moved", "exclude": "excluded", "add": "added"}[self.op]
        return f"{verb} {self.src.name} to {self.dst.parent.name}"


def read_journal(path: Path) -> tuple[list[Edit], list[str]]:
    """(changes not yet undone, oldest first; temporary files of copies a kill interrupted).

    A change counts from its "begin" line (a crash before "done" may have made it; undo
    looks), unless a "failed" line follows; "undone" or "abandoned" retires the newest
    open change with the same op, source and destination. Torn or foreign lines are skipped.
    """
    records: list[list] = []  # [key, Edit, retired]
    temps: dict[tuple[str, str, str], str] = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("op", "src", "dst")):
                continue
            op, event, key = entry["op"], entry.get("event"), (entry["op"], entry["src"], entry["dst"])
            tmp = entry.get("tmp")
            if event == "begin" and isinstance(tmp, str) and _is_temp_of(tmp, entry["dst"]):
                temps[key] = tmp
            elif event in ("done", "failed"):
                temps.pop(key, None)
            if op not in OPS:
                continue
            if event == "begin":
                created = tuple(Path(p) for p in entry.get("created") or () if isinstance(p, str))
                sha = entry.get("sha256") if isinstance(entry.get("sha256"), str) else None
                records.append([key, Edit(op, Path(entry["src"]), Path(entry["dst"]), sha, created), False])
            elif event in ("failed", "undone", "abandoned"):
                for record in reversed(records):
                    if record[0] == key and not record[2]:
                        if event == "failed":
                            records.remove(record)
                        else:
                            record[2] = True
                        break
    return [record[1] for record in records if not record[2]], list(temps.values())


class DatasetEditError(Exception):
    """A change was not made; the message says why (and that nothing was lost)."""


def excluded_folder(dataset: str | os.PathLike[str]) -> Path:
    """`<DATASET>.excluded`, beside the dataset: excluded images and the journal."""
    root = Path(os.path.abspath(dataset))
    return root.with_name(root.name + ".excluded")


def why(error: OSError) -> str:
    """One line for the OS errors a user can act on."""
    if error.errno == errno.EROFS:
        return "the disk is read-only"
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "the disk is full"
    if isinstance(error, PermissionError):
        return "permission denied (is the folder read-only?)"
    if isinstance(error, FileNotFoundError):
        return "the file or folder no longer exists"
    return error.strerror or str(error)


@dataclass
class UndoReport:
    """What an undo did: (change, what was done) and (change, why it was not undone)."""

    undone: list[tuple[Edit, str]] = field(default_factory=list)
    problems: list[tuple[Edit, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"undone: {what}" for _, what in self.undone] + [f"not undone: {why}" for _, why in self.problems]

    def summary(self) -> str:
        if not self.undone and not self.problems:
            return "nothing to undo"
        return f"undid {len(self.undone)} change(s); {len(self.problems)} could not be undone"


class DatasetEdits:
    """The journaled changes to one dataset folder (see the module docstring)."""

    def __init__(self, dataset: str | os.PathLike[str]) -> None:
        self.dataset = Path(os.path.abspath(dataset))
        self.excluded = excluded_folder(self.dataset)
        self.journal_path = self.excluded / JOURNAL_NAME

    # -- the changes -------------------------------------------------------------------

    def move(self, image: str | os.PathLike[str], to_class: str) -> Path:
        """Move an image of the dataset into class `to_class` (made if new); its new path."""
        source, current = self._image_in_dataset(image)
        folder, created = self._class_folder(self.dataset, to_class)
        if folder.name == current and source.parent == folder:
            self._remove_empty(created)
            raise DatasetEditError(f"{source.name} is already in class {current!r}")
        return self._change("move", source, folder, created)

    def exclude(self, image: str | os.PathLike[str]) -> Path:
        """Move an image aside into `<DATASET>.excluded/<class>/`; its new path."""
        source, current = self._image_in_dataset(image)
        created = self._make(self.excluded)
        folder, more = self._class_folder(self.excluded, current)
        return self._change("exclude", source, folder, created + more)

    def add_images(self, images: Iterable[str | os.PathLike[str]], to_class: str) -> list[Path]:
        """Copy image files into class `to_class` (made if new); their paths in the dataset.

        Stops at the first that fails, with DatasetEditError; the ones before it stay added
        (and undoable), which the message says.
        """
        sources = [Path(os.path.abspath(image)) for image in images]
        for source in sources:
            if not is_image_file(source):
                raise DatasetEditError(f"{source.name} is not an image file (by its extension); nothing was added")
            if not source.is_file():
                raise DatasetEditError(f"{source} is not a file that can be read; nothing was added")
        added: list[Path] = []
        for source in sources:
            folder, created = self._class_folder(self.dataset, to_class)
            try:
                digest = file_digest(source)
            except OSError as error:
                raise DatasetEditError(self._stopped(f"cannot read {source}: {why(error)}", added)) from error
            try:
                added.append(self._change("add", source, folder, created, sha256=digest))
            except DatasetEditError as error:
                raise DatasetEditError(self._stopped(str(error), added)) from error
        return added

    def record_added(self, files: Iterable[str | os.PathLike[str]], source: str) -> None:
        """Journal files already written into the dataset (camera frames) as additions.

        A capture writes each frame straight into its class folder (atomically, never over
        another file); journaling them afterwards makes a recording undoable like any
        other addition: undo removes each frame that is still as it was written.
        """
        log = self._open_log()
        try:
            for file in files:
                path = Path(os.path.abspath(file))
                if not self._ours(path):
                    raise DatasetEditError(f"{path} is not inside {self.dataset}; not recorded")
                try:
                    digest = file_digest(path)
                except OSError:
                    continue  # gone already: nothing to undo
                log.write(event="begin", op="add", src=source, dst=str(path), tmp=None, sha256=digest)
                log.write(event="done", op="add", src=source, dst=str(path))
        finally:
            log.close()

    @staticmethod
    def _stopped(message: str, added: list[Path]) -> str:
        return message + (f" ({len(added)} image(s) were added before this; undo removes them)" if added else "")

    # -- undo --------------------------------------------------------------------------

    def history(self) -> list[Edit]:
        """The changes not yet undone, oldest first."""
        if not self.journal_path.exists():
            return []
        try:
            return read_journal(self.journal_path)[0]
        except OSError as error:
            raise DatasetEditError(f"cannot read the edit journal {self.journal_path}: {why(error)}") from error

    def undo_last(self) -> UndoReport:
        """Undo the newest change not yet undone."""
        pending = self.history()
        return self._undo(pending[-1:])

    def undo_all(self) -> UndoReport:
        """Undo every change not yet undone, newest first (each file walks back its own path)."""
        return self._undo(list(self.history()))

    def _undo(self, edits: list[Edit]) -> UndoReport:
        report = UndoReport()
        if not edits:
            return report
        log = self._open_log()
        try:
            for stale in read_journal(self.journal_path)[1]:
                with contextlib.suppress(OSError):
                    os.unlink(stale)  # a killed copy's partial file; the file it copied is whole
            for edit in reversed(edits):
                try:
                    self._undo_one(edit, log, report)
                except OSError as error:
                    report.problems.append((edit, f"{edit.dst}: {why(error)}"))
        finally:
            log.close()
        return report

    def _undo_one(self, edit: Edit, log: SortLog, report: UndoReport) -> None:
        src, dst = edit.src, edit.dst
        if not (self._ours(dst) and (edit.op == "add" or self._ours(src))):
            report.problems.append((edit, f"{dst}: not inside {self.dataset} or {self.excluded}; left alone"))
            return
        if edit.op == "add":
            if not os.path.lexists(dst):
                what = f"{dst} was already gone"
            elif edit.sha256 and file_digest(dst) != edit.sha256:
                report.problems.append((edit, f"{dst} changed since it was added; left alone"))
                return
            else:
                os.unlink(dst)
                what = f"removed the added copy {dst}"
        elif not os.path.lexists(dst):
            if not os.path.lexists(src):
                report.problems.append((edit, f"file gone: neither at {dst} nor at {src}"))
                log.write(event="abandoned", op=edit.op, src=str(src), dst=str(dst))
                return
            what = f"{src} was already back"
        elif os.path.lexists(src):
            if not _identical(src, dst):
                report.problems.append((edit, f"{src} is taken by another file; {dst} left where it is"))
                return
            os.unlink(dst)  # a copy a crash left behind: the original is at its place
            what = f"{src} was already back (removed the copy {dst})"
        else:
            src.parent.mkdir(parents=True, exist_ok=True)
            try:
                _transfer(dst, src, True, log, op=f"undo-{edit.op}")
            except FileExistsError:
                report.problems.append((edit, f"{src} is taken by another file; {dst} left where it is"))
                return
            what = f"moved {dst} back to {src}"
        log.write(event="undone", op=edit.op, src=str(src), dst=str(dst))
        self._remove_empty(edit.created)
        report.undone.append((edit, what))

    # -- helpers -----------------------------------------------------------------------

    def _ours(self, path: Path) -> bool:
        """The journal is trusted no further than the dataset and its excluded folder."""
        return any(_inside(path, folder) for folder in (self.dataset, self.excluded))

    def _image_in_dataset(self, image: str | os.PathLike[str]) -> tuple[Path, str]:
        """(absolute path, its class folder's name), or DatasetEditError."""
        path = Path(os.path.abspath(image))
        try:
            parts = path.relative_to(self.dataset).parts
        except ValueError:
            raise DatasetEditError(f"{path} is not inside the dataset {self.dataset}") from None
        if len(parts) < 2 or parts[0].startswith("."):
            raise DatasetEditError(f"{path} is not in a class folder of {self.dataset}")
        if not os.path.lexists(path) or path.is_dir():
            raise DatasetEditError(f"{path} is not there any more (rescan the dataset)")
        return path, parts[0]

    def _class_folder(self, under: Path, name: str) -> tuple[Path, list[Path]]:
        """The folder of class `name` under `under` and the folders made for it.

        An existing class whose name differs only by case or Unicode normalisation is used
        instead of making a look-alike folder that training would refuse.
        """
        if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
            raise DatasetEditError(f"{name!r} cannot be a class folder name")
        with contextlib.suppress(OSError):
            for folder in class_folders(under):
                if clash_key(folder.name) == clash_key(name):
                    return folder, []
        return under / name, self._make(under / name)

    def _make(self, folder: Path) -> list[Path]:
        """mkdir, returning the folder if this call made it (so undo can remove it)."""
        try:
            folder.mkdir()
            return [folder]
        except FileExistsError:
            if folder.is_dir():
                return []
            raise DatasetEditError(f"{folder} exists and is not a folder") from None
        except OSError as error:
            raise DatasetEditError(f"cannot create {folder}: {why(error)}; nothing was changed") from error

    @staticmethod
    def _remove_empty(folders: Iterable[Path]) -> None:
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only ever an empty folder

    def _open_log(self) -> SortLog:
        try:
            self.excluded.mkdir(exist_ok=True)
            return SortLog(self.journal_path)
        except OSError as error:
            raise DatasetEditError(
                f"cannot write the edit journal {self.journal_path}: {why(error)}; nothing was changed"
            ) from error

    def _change(self, op: str, source: Path, folder: Path, created: list[Path], **extra: str) -> Path:
        """Move (or, for "add", copy) `source` into `folder` under a free name, journaled."""
        try:
            log = self._open_log()
        except DatasetEditError:
            self._remove_empty(created)
            raise
        move = op != "add"
        try:
            for _attempt in range(100):
                target = free_name(folder, source.name)
                try:
                    _transfer(source, target, move, log, op=op, created=[str(p) for p in created], **extra)
                    return target
                except FileExistsError:  # taken since free_name looked: the next name
                    log.write(event="failed", op=op, src=str(source), dst=str(target), error="name taken")
                except OSError as error:
                    if move and not os.path.lexists(source) and os.path.lexists(target):
                        return target  # it moved; only the "done" line is missing (undo copes)
                    if os.path.lexists(source) and os.path.lexists(target) and _identical(source, target):
                        os.unlink(target)  # a copy made before the step failed: the source stays
                    with contextlib.suppress(OSError):
                        log.write(event="failed", op=op, src=str(source), dst=str(target), error=why(error))
                    self._remove_empty(created)
                    verb = "move" if move else "copy"
                    raise DatasetEditError(
                        f"cannot {verb} {source} to {folder}: {why(error)}; the file was left where it was"
                    ) from error
            raise DatasetEditError(f"no free name for {source.name} in {folder}")
        finally:
            log.close()


def _inside(path: Path, folder: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), folder]) == str(folder)
    except ValueError:
        return False
