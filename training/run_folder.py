"""A run folder that a failed start leaves behind is removed again.

A `train` that stops before its first epoch is saved (ImageNet weights that cannot be
downloaded, a network that does not fit the image size, a decoder crashing on a file,
Ctrl+C during the first epoch) used to leave config.yaml, split.json and a TensorBoard
folder: a half-made run that looks like a real one in a listing, that `evaluate` and
`export` refuse, and that `--resume` cannot continue. Once a resume point exists the
folder is worth keeping and is never touched.

Only what this run created goes: a folder that did not exist is removed whole; in a
folder that existed, only the entries that were not there before are removed.
What a run folder holds, and the names of its files: convnet_common.run_layout.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from training.callbacks import ResumeState


def _has_resume_point(run_dir: Path) -> bool:
    try:
        state = ResumeState.load(run_dir)
    except ValueError:
        return True  # unreadable, but not ours to judge: keep it
    return state is not None and bool(state.checkpoint)


class RunFolderGuard:
    """`with RunFolderGuard(run_dir):` around the work of a new (not resumed) run."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.existed = self.run_dir.exists() or self.run_dir.is_symlink()
        self.before = {p.name for p in self.run_dir.iterdir()} if self.run_dir.is_dir() else set()

    def __enter__(self) -> RunFolderGuard:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is None or not self.run_dir.is_dir() or _has_resume_point(self.run_dir):
            return False
        if not self.existed:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            removed = str(self.run_dir)
        else:
            new = [p for p in self.run_dir.iterdir() if p.name not in self.before]
            for path in new:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            removed = f"what this run had written in {self.run_dir}" if new else ""
        if removed:
            print(f"removed {removed}: the run stopped before its first epoch was saved", file=sys.stderr, flush=True)
        return False  # the error goes on to the caller
