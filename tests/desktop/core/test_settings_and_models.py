"""Settings persistence and recent models (no Qt; the window side is tests/desktop/qt/test_settings_window.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.core.settings import CONFIG_DIR_ENV, MAX_RECENT_MODELS, Settings, config_dir


def test_config_dir_follows_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "cfg"))
    assert config_dir() == tmp_path / "cfg"
    monkeypatch.delenv(CONFIG_DIR_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "convnet-studio"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_corrupt_settings_file_gives_defaults_and_warning(content: str, isolated_config: Path) -> None:
    (isolated_config / "settings.json").write_text(content)
    settings = Settings.load()
    assert settings.warning is not None and "corrupt" in settings.warning
    assert settings.get("provider") == "auto" and settings.recent_models() == []


def test_wrong_types_are_ignored_and_unknown_keys_kept(isolated_config: Path) -> None:
    path = isolated_config / "settings.json"
    path.write_text(json.dumps({"opacity": "loud", "colormap": "Hot", "show_map": 1, "other_view": {"a": 1}}))
    settings = Settings.load()
    assert settings.warning is None
    assert settings.get("opacity") == 45 and settings.get("colormap") == "Hot" and settings.get("show_map") is True
    assert settings.save() is None
    assert json.loads(path.read_text())["other_view"] == {"a": 1}


def test_recent_models_are_capped_and_deduplicated(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "s.json")
    for number in range(MAX_RECENT_MODELS + 3):
        settings.add_recent_model(tmp_path / f"m{number}.onnx")
    settings.add_recent_model(tmp_path / "m5.onnx")
    recent = settings.recent_models()
    assert len(recent) == MAX_RECENT_MODELS and recent[0].name == "m5.onnx" and len(set(recent)) == len(recent)
