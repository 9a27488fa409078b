"""User settings: one plain JSON file in the user's config folder.

Plain JSON (not QSettings) so the file is readable, editable and testable without Qt.
A missing, unreadable or corrupt file never stops the app: defaults are used and a
one-line warning is returned for the window to show. Writes are atomic.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from convnet_common.atomic import write_text_atomic
from convnet_common.safe_json import JsonInputError, read_json
from desktop.core.providers import PROVIDER_CHOICES

CONFIG_DIR_ENV = "CONVNET_STUDIO_CONFIG_DIR"
APP_DIR_NAME = "convnet-studio"
SETTINGS_NAME = "settings.json"
MAX_RECENT_MODELS = 8
# The file holds a few dozen short values; anything near this size is not ours.
MAX_SETTINGS_BYTES = 1_000_000

DEFAULTS: dict[str, Any] = {
    "window_geometry": "",  # base64 of QMainWindow.saveGeometry()
    "window_state": "",  # base64 of QMainWindow.saveState()
    "splitter_sizes": [],
    "current_tab": 0,
    "last_image_dir": "",
    "last_model_dir": "",
    "recent_models": [],
    "provider": "auto",
    "colormap": "Jet",
    "opacity": 45,
    "show_map": True,
    "map_choice": "gradcam",  # which in-graph map the viewer draws: "gradcam" or "layercam" (desktop/qt/map_choice.py)
    "dismissed_notices": [],  # keys of notices closed for good (desktop/core/notices.py)
    "undo_sort_dest": "",  # DEST of the last sort that moved files and is not undone yet
    # The Train tab's choices and dataset folder; its view checks every entry it reads back.
    "train_tab": {},
    # The user's unknown-score threshold per model, by the file's SHA-256 (hex): it follows
    # the file when moved, and a retrained file does not inherit an old threshold. Model ->
    # Unknown threshold… sets it; the model file itself is never rewritten.
    "unknown_thresholds": {},
}
MAX_UNKNOWN_THRESHOLDS = 500  # models remembered; the oldest are dropped beyond this
_SHA256 = re.compile(r"[0-9a-f]{64}")


def config_dir() -> Path:
    """$CONVNET_STUDIO_CONFIG_DIR, else %APPDATA% on Windows, else $XDG_CONFIG_HOME or ~/.config."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / APP_DIR_NAME


_QT_INT_MAX = 2**31 - 1  # Qt takes 32-bit ints; a larger one raises OverflowError in the window
_ASCII_KEYS = ("window_geometry", "window_state")  # base64, decoded as ASCII by the window
_LIST_ITEMS: dict[str, type] = {"splitter_sizes": int, "recent_models": str, "dismissed_notices": str}
_CHOICES: dict[str, tuple[str, ...]] = {"provider": PROVIDER_CHOICES, "map_choice": ("gradcam", "layercam")}


def _valid(key: str, value: Any) -> bool:
    """A stored value is used only if the window can use it as it is.

    It must have the default's type (bool is not an int here), ints must fit Qt's
    32 bits, lists must hold the right kind of item, base64 fields must be ASCII and
    the provider one of the choices: a hand-edited or damaged file then costs one
    setting, never a crash at start-up.
    """
    default = DEFAULTS[key]
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if not isinstance(value, type(default)):
        return False
    if isinstance(value, int):
        return -_QT_INT_MAX <= value <= _QT_INT_MAX
    if isinstance(value, list):
        item_type = _LIST_ITEMS.get(key, object)
        return all(
            isinstance(item, item_type)
            and not isinstance(item, bool)
            and (not isinstance(item, int) or 0 <= item <= _QT_INT_MAX)
            for item in value
        )
    if key in _ASCII_KEYS:
        return value.isascii()
    if key in _CHOICES:
        return value in _CHOICES[key]
    return True


def usable_thresholds(value: Any) -> dict[str, float]:
    """The entries of a stored `unknown_thresholds` that can be used: a SHA-256 in lower-case hex
    mapped to a finite number (not a bool). Anything else is dropped entry by entry, so one
    hand-edited line costs that model's threshold, not every model's."""
    if not isinstance(value, dict):
        return {}
    kept = {
        key: float(number)
        for key, number in value.items()
        if isinstance(key, str)
        and _SHA256.fullmatch(key)
        and isinstance(number, (int, float))
        and not isinstance(number, bool)
        and math.isfinite(number)
    }
    return dict(list(kept.items())[-MAX_UNKNOWN_THRESHOLDS:])


# A saved panel layout wider than this in total is not from any real screen (or screens).
MAX_LAYOUT_WIDTH = 32_768


def usable_panel_sizes(saved: list[Any], minimums: list[int]) -> bool:
    """Whether a saved splitter layout can be restored without hiding a panel.

    Every panel must get at least its minimum width (a 0 is a collapsed panel the user
    may never find again, e.g. a list saved while it was hidden), and the total must be
    a plausible width, since the splitter scales sizes to fit: [1, 10**6, 1] would crush
    both side panels. Anything else: the window's defaults.
    """
    if len(saved) != len(minimums) or not all(isinstance(v, int) and not isinstance(v, bool) for v in saved):
        return False
    return all(v >= low for v, low in zip(saved, minimums)) and sum(saved) <= MAX_LAYOUT_WIDTH


class Settings:
    """Typed access to the settings file; unknown keys in the file are kept on save."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / SETTINGS_NAME
        self.values: dict[str, Any] = json.loads(json.dumps(DEFAULTS))
        self._extra: dict[str, Any] = {}
        self.warning: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read the file; on any problem keep defaults and set `warning`."""
        settings = cls(path)
        try:
            data = read_json(settings.path, MAX_SETTINGS_BYTES, "the file")
            if not isinstance(data, dict):
                raise JsonInputError(f"expected a JSON object, got {type(data).__name__}")
        except FileNotFoundError:
            return settings
        except OSError as error:
            settings.warning = f"Could not read settings ({settings.path}): {error.strerror or error}; using defaults."
            return settings
        except JsonInputError as error:
            settings.warning = f"Settings file {settings.path} is corrupt ({error}); using defaults."
            return settings
        for key, value in data.items():
            if key not in DEFAULTS:
                settings._extra[key] = value
            elif key == "unknown_thresholds":
                settings.values[key] = usable_thresholds(value)
            elif _valid(key, value):
                settings.values[key] = value
        return settings

    def get(self, key: str) -> Any:
        return self.values[key]

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self.values[key] = value

    def save(self) -> str | None:
        """Write atomically; return an error message instead of raising (closing must not fail)."""
        data = {**self._extra, **self.values}
        try:
            write_text_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError as error:
            return f"Could not save settings to {self.path}: {error.strerror or error}"
        return None

    # per-model unknown thresholds -----------------------------------------------------
    def unknown_threshold(self, sha256: str) -> float | None:
        """The user's threshold for the model file with this SHA-256, or None (use the file's)."""
        return usable_thresholds(self.values["unknown_thresholds"]).get(sha256)

    def set_unknown_threshold(self, sha256: str, value: float | None) -> None:
        """Remember `value` for that model (None: forget it, the file's threshold applies again)."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError("a model is keyed by its SHA-256 in lower-case hex")
        if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
            raise ValueError(f"the threshold must be a finite number, got {value!r}")
        table = dict(usable_thresholds(self.values["unknown_thresholds"]))
        table.pop(sha256, None)
        if value is not None:
            table[sha256] = float(value)
        self.values["unknown_thresholds"] = usable_thresholds(table)

    # recent models -------------------------------------------------------------------
    def recent_models(self) -> list[Path]:
        return [Path(p) for p in self.values["recent_models"] if isinstance(p, str)]

    def add_recent_model(self, path: str | os.PathLike[str]) -> None:
        """Put `path` first, without duplicates, keeping at most MAX_RECENT_MODELS."""
        text = str(Path(path).resolve())
        recent = [p for p in self.values["recent_models"] if p != text]
        self.values["recent_models"] = [text, *recent][:MAX_RECENT_MODELS]

    def prune_recent_models(self) -> list[Path]:
        """Drop entries whose file no longer exists; return the dropped ones."""
        kept, missing = [], []
        for path in self.recent_models():
            (kept if path.is_file() else missing).append(path)
        self.values["recent_models"] = [str(p) for p in kept]
        return missing
