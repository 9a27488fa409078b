"""--install-launcher / --uninstall-launcher in a temporary XDG_DATA_HOME and HOME."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import app, launcher

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="freedesktop launcher is Linux-only")


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    data, home = tmp_path / "data", tmp_path / "home"
    (home / "Desktop").mkdir(parents=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("HOME", str(home))
    return data, home


def test_install_then_uninstall(homes: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data, home = homes
    assert app.main(["--install-launcher"]) == 0
    menu_file = data / "applications" / "convnet-studio.desktop"
    icon = data / "icons" / "hicolor" / "256x256" / "apps" / "convnet-studio.png"
    desktop_copy = home / "Desktop" / "convnet-studio.desktop"
    for path in (menu_file, icon, desktop_copy):
        assert path.is_file(), path
    assert icon.read_bytes() == launcher.ICON_PNG.read_bytes()
    assert os.access(desktop_copy, os.X_OK)

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(menu_file)
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] == "ConvNet Studio"
    assert entry["Icon"] == str(icon) and entry["Terminal"] == "false"
    assert entry["Exec"].startswith(launcher.launch_command()[0]) and entry["Exec"].endswith("%F")
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(menu_file)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout
    printed = capsys.readouterr().out
    assert f"installed {menu_file}" in printed and f"installed {icon}" in printed

    unrelated = data / "applications" / "other.desktop"
    unrelated.write_text("[Desktop Entry]\n")
    assert app.main(["--uninstall-launcher"]) == 0
    for path in (menu_file, icon, desktop_copy):
        assert not path.exists(), path
    assert unrelated.exists()  # only what was installed is removed
    assert f"removed {menu_file}" in capsys.readouterr().out
    assert app.main(["--uninstall-launcher"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_exec_quoting() -> None:
    entry = launcher.desktop_entry(["/opt/my apps/python", "-m", "desktop.app"], Path("/i.png"), None)
    assert 'Exec="/opt/my apps/python" -m desktop.app %F' in entry
