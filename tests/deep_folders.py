"""Build and remove folder chains nested thousands deep, for the deep-folder tests.

Made and removed through directory descriptors (one level at a time, no recursion), since
paths past PATH_MAX (4,096 bytes) cannot be opened by name and shutil.rmtree (recursive)
would itself hit RecursionError on them. Each level is named "d", so depth N gives a path
of about 2N bytes: 1,100 levels fit under PATH_MAX, 3,000 do not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

LEVEL = "d"


def png_bytes(value: int = 128) -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((8, 8, 3), value, np.uint8))
    assert ok
    return encoded.tobytes()


def make_chain(root: Path, depth: int, images: dict[int, Iterable[str]]) -> None:
    """`depth` nested folders under `root`; `images[level]` names PNGs written at that level
    (level 0 is `root` itself, level `depth` the innermost folder)."""
    root.mkdir(parents=True, exist_ok=True)
    data = png_bytes()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth + 1):
            for name in images.get(level, ()):
                out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
                os.write(out, data)
                os.close(out)
            if level < depth:
                os.mkdir(LEVEL, dir_fd=fd)
                inner = os.open(LEVEL, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
    finally:
        os.close(fd)


def remove_chain(root: Path) -> None:
    """Delete what make_chain made below `root` (innermost first), leaving `root` itself."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        while LEVEL in os.listdir(fds[-1]):
            fds.append(os.open(LEVEL, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        while fds:
            fd = fds.pop()
            for name in os.listdir(fd):
                if name != LEVEL:
                    os.unlink(name, dir_fd=fd)
            if fds:
                os.rmdir(LEVEL, dir_fd=fds[-1])
            os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


def chain_path(root: Path, levels: int) -> str:
    """The path of the folder `levels` deep (as text: it may be too long to open)."""
    return os.path.join(str(root), *([LEVEL] * levels)) if levels else str(root)
