"""A bounded in-memory cache of forward-pass activation maps.

A RISE map costs hundreds of forward passes; clicking back to a class or an image seen a
moment ago should cost none. A map is exactly a function of the model's graph, the pixels
the model was given, the class and the method's settings, so that is the key: the model by
its SHA-256 when the app already knows it (else path, size and modification time — a
retrained file at the same path is a different model), the image by a digest of the
model-input pixels (a pasted picture and a file with the same pixels share a map).
Least recently used maps go first; a map is small (input size, float32).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_CAPACITY = 48


@dataclass(frozen=True)
class MapKey:
    model: str
    image: str
    class_index: int
    method: tuple


def model_identity(path: Path, sha256: str | None = None) -> str:
    """The model's part of the key: its SHA-256 if known, else path + size + mtime (no hashing of big files)."""
    if sha256:
        return f"sha256:{sha256}"
    try:
        stat = Path(path).stat()
    except OSError:
        return f"path:{Path(path).resolve()}"
    return f"path:{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def image_identity(model_input: np.ndarray) -> str:
    """A digest of the pixels the model is given (uint8 [H, W, 3]) and their shape."""
    pixels = np.ascontiguousarray(model_input)
    digest = hashlib.blake2b(pixels.tobytes(), digest_size=16)
    digest.update(repr((pixels.shape, str(pixels.dtype))).encode())
    return digest.hexdigest()


class MapCache:
    """Least-recently-used maps, at most `capacity`; safe to use from worker threads."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("the map cache must hold at least one map")
        self.capacity = capacity
        self._maps: OrderedDict[MapKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._maps)

    def get(self, key: MapKey) -> np.ndarray | None:
        with self._lock:
            found = self._maps.get(key)
            if found is not None:
                self._maps.move_to_end(key)
            return found

    def put(self, key: MapKey, values: np.ndarray) -> None:
        """Keep a read-only copy, so no caller can change a map another will be given."""
        stored = np.array(values, dtype=np.float32, copy=True)
        stored.setflags(write=False)
        with self._lock:
            self._maps[key] = stored
            self._maps.move_to_end(key)
            while len(self._maps) > self.capacity:
                self._maps.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._maps.clear()
