"""The app's own files read back as untrusted input: settings and batch resume state.

A hand-edited, damaged or planted file costs the values it spoils, never a crash at
start-up, and a resume state can never name files outside the folder being resumed
(resumed rows can be sorted with "move").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.core.batch import BatchResult
from desktop.core.results_io import BatchState, model_key
from desktop.core.settings import DEFAULTS, MAX_SETTINGS_BYTES, Settings

HOSTILE_VALUES = {
    "window_geometry": "é not base64",  # the window decodes it as ASCII
    "window_state": "\u2603",
    "splitter_sizes": [100, "wide", 300],
    "opacity": 10**15,  # beyond Qt's 32-bit ints
    "current_tab": -(2**40),
    "provider": "tpu",
    "recent_models": ["/ok.onnx", 7, None],
    "show_map": "yes",
    "colormap": ["Jet"],
}


def test_hostile_values_fall_back_to_defaults(isolated_config: Path) -> None:
    (isolated_config / "settings.json").write_text(json.dumps({**HOSTILE_VALUES, "last_image_dir": "/pics"}))
    settings = Settings.load()
    assert settings.warning is None
    for key in HOSTILE_VALUES:
        assert settings.get(key) == DEFAULTS[key], key
    assert settings.get("last_image_dir") == "/pics"  # the good value next to them is kept


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b" " * (MAX_SETTINGS_BYTES + 1), "above the 1,000,000-byte limit"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"opacity": 1' + b"0" * 30 + b"}", "integer too large"),
        (b'{"colormap": "\xff"}', "not UTF-8 text"),
    ],
)
def test_unusable_settings_file_gives_defaults_and_one_line(
    isolated_config: Path, content: bytes, expected: str
) -> None:
    (isolated_config / "settings.json").write_bytes(content)
    settings = Settings.load()
    assert settings.warning is not None and "corrupt" in settings.warning and expected in settings.warning
    assert "\n" not in settings.warning
    assert settings.values == DEFAULTS


def _state_with(tmp_path: Path, model: Path, entries: list[dict]) -> tuple[Path, Path]:
    folder = tmp_path / "photos"
    folder.mkdir(exist_ok=True)
    state_dir = tmp_path / "state"
    state = BatchState.load(state_dir, folder, model)
    data = {"version": 1, "folder": str(folder.resolve()), "model": model_key(model), "finished": entries}
    state.file.parent.mkdir(parents=True, exist_ok=True)
    state.file.write_text(json.dumps(data))
    return state_dir, folder


def _entry(path: Path | str, label: object = "red") -> dict:
    return {"path": str(path), "label": label, "confidence": 0.9, "top_k": [["red", 0.9]], "error": None}


def test_resume_state_ignores_files_outside_its_folder(tmp_path: Path, colour_model: Path) -> None:
    folder = tmp_path / "photos"
    entries = [
        _entry(folder / "inside.png"),
        _entry(folder / "sub" / "deeper.png"),
        _entry(tmp_path / "elsewhere" / "precious.png"),
        _entry("/etc/passwd"),
        _entry(f"{folder}/../photos-other/x.png"),
        _entry(f"{folder}-sibling/x.png"),  # shares the prefix, not the folder
        {**_entry(folder / "failed.png"), "error": "unreadable", "label": None},
    ]
    state_dir, folder = _state_with(tmp_path, colour_model, entries)
    resumed = BatchState.load(state_dir, folder, colour_model)
    assert sorted(resumed.finished) == sorted([str(folder / "inside.png"), str(folder / "sub" / "deeper.png")])


@pytest.mark.parametrize(
    "bad_entry",
    [
        {"path": "x.png", "label": 5, "confidence": 0.5},
        {"path": "x.png", "label": "red", "confidence": True},
        {"path": 17, "label": "red"},
        {"path": "x.png", "label": "red", "top_k": [[1, 2, 3]]},
        {"label": "red"},
        "not an object",
    ],
)
def test_damaged_resume_state_means_start_over(tmp_path: Path, colour_model: Path, bad_entry: object) -> None:
    folder = tmp_path / "photos"
    good = _entry(folder / "inside.png")
    if isinstance(bad_entry, dict) and isinstance(bad_entry.get("path"), str):
        bad_entry = {**bad_entry, "path": str(folder / bad_entry["path"])}
    state_dir, folder = _state_with(tmp_path, colour_model, [good, bad_entry])
    assert BatchState.load(state_dir, folder, colour_model).finished == {}


def test_oversized_resume_state_is_not_read(tmp_path: Path, colour_model: Path, monkeypatch) -> None:
    import desktop.core.results_io as results_io

    folder = tmp_path / "photos"
    state_dir, folder = _state_with(tmp_path, colour_model, [_entry(folder / "inside.png")])
    assert len(BatchState.load(state_dir, folder, colour_model).finished) == 1
    monkeypatch.setattr(results_io, "MAX_STATE_BYTES", 100)
    assert BatchState.load(state_dir, folder, colour_model).finished == {}


def test_saved_state_round_trips_through_the_checks(tmp_path: Path, colour_model: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    state = BatchState.load(tmp_path / "state", folder, colour_model)
    state.add([BatchResult(folder / "a b é.png", "red", 0.8, (("red", 0.8), ("green", 0.1)), None)])
    state.save()
    again = BatchState.load(tmp_path / "state", folder, colour_model)
    assert again.finished[str(folder / "a b é.png")].top_k == (("red", 0.8), ("green", 0.1))
