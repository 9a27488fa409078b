"""Install or remove a desktop menu entry for ConvNet Studio (`--install-launcher`).

Linux: a freedesktop .desktop file plus a hicolor icon under $XDG_DATA_HOME (and a copy
on ~/Desktop if that folder exists). Windows: a Start Menu .lnk made by PowerShell.
macOS: instructions only. A manifest records what was installed so uninstall removes
exactly that and nothing else.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from convnet_common.atomic import write_bytes_atomic, write_text_atomic
from convnet_common.safe_json import read_json

# The manifest lists a handful of paths; anything bigger is not ours.
MANIFEST_MAX_BYTES = 64 * 1024

APP_ID = "convnet-studio"
APP_NAME = "ConvNet Studio"
RESOURCES = Path(__file__).resolve().parent / "resources"
ICON_PNG = RESOURCES / f"{APP_ID}.png"
MANIFEST_NAME = f"{APP_ID}-launcher.json"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launch_command() -> list[str]:
    """The convnet-studio script beside the interpreter if present, else `python -m desktop.app`."""
    folder = Path(sys.executable).parent
    for name in (APP_ID, f"{APP_ID}.exe"):
        script = folder / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "desktop.app"]


def _exec_quote(argument: str) -> str:
    """Quote one Exec= argument as the Desktop Entry spec asks (double quotes, escaped specials)."""
    if not any(c in argument for c in " \t\n\"'\\><~|&;$*?#()`="):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'


def desktop_entry(command: list[str], icon: Path, working_dir: Path | None) -> str:
    exec_line = " ".join(_exec_quote(part) for part in command) + " %F"
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        f"Name={APP_NAME}",
        "GenericName=Image classifier",
        "Comment=Classify images with ConvNet Studio ONNX models",
        f"Exec={exec_line}",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Graphics;Viewer;",
        "MimeType=image/png;image/jpeg;image/bmp;image/webp;",
        f"StartupWMClass={APP_ID}",
    ]
    if working_dir is not None:
        lines.append(f"Path={working_dir}")
    return "\n".join(lines) + "\n"


def _manifest_path() -> Path:
    return data_home() / APP_ID / MANIFEST_NAME


def _validate(desktop_file: Path) -> str:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        return "desktop-file-validate not found; skipped validation"
    result = subprocess.run([tool, str(desktop_file)], capture_output=True, text=True, timeout=30)
    problems = (result.stdout + result.stderr).strip()
    return "validated with desktop-file-validate" if result.returncode == 0 and not problems else problems


def install_linux() -> list[Path]:
    """Write icon + .desktop file(s) and the manifest; return the files written."""
    icon = data_home() / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png"
    write_bytes_atomic(icon, ICON_PNG.read_bytes())
    # Running from a checkout needs the repository as working dir for `-m desktop.app`.
    repo = Path(__file__).resolve().parents[1]
    command = launch_command()
    entry = desktop_entry(command, icon, repo if command[1:2] == ["-m"] else None)
    written = [icon]
    menu_file = data_home() / "applications" / f"{APP_ID}.desktop"
    write_text_atomic(menu_file, entry)
    os.chmod(menu_file, 0o755)
    written.append(menu_file)
    print(f"{menu_file}: {_validate(menu_file)}")
    desktop_dir = Path.home() / "Desktop"
    if desktop_dir.is_dir():
        copy = desktop_dir / f"{APP_ID}.desktop"
        write_text_atomic(copy, entry)
        os.chmod(copy, 0o755)
        if shutil.which("gio"):  # GNOME asks before launching untrusted desktop files
            subprocess.run(["gio", "set", str(copy), "metadata::trusted", "true"], capture_output=True, timeout=10)
        written.append(copy)
    write_text_atomic(_manifest_path(), json.dumps({"files": [str(p) for p in written]}, indent=2) + "\n")
    return written


def install_windows() -> list[Path]:
    """A Start Menu shortcut via WScript.Shell (untested here: no Windows machine)."""
    programs = (
        Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
        / "Microsoft"
        / "Windows"
        / "Start Menu"
        / "Programs"
    )
    link = programs / f"{APP_NAME}.lnk"
    command = launch_command()
    target = command[0].replace("python.exe", "pythonw.exe") if command[0].endswith("python.exe") else command[0]
    arguments = subprocess.list2cmdline(command[1:])
    script = (
        "$s = (New-Object -ComObject WScript.Shell).CreateShortcut($env:CS_LINK); "
        "$s.TargetPath = $env:CS_TARGET; $s.Arguments = $env:CS_ARGS; "
        "$s.WorkingDirectory = $env:CS_DIR; $s.IconLocation = $env:CS_ICON; $s.Save()"
    )
    env = {
        **os.environ,
        "CS_LINK": str(link),
        "CS_TARGET": target,
        "CS_ARGS": arguments,
        "CS_DIR": str(Path(__file__).resolve().parents[1]),
        "CS_ICON": str(RESOURCES / f"{APP_ID}.ico"),
    }
    programs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["powershell", "-NoProfile", "-Command", script], env=env, check=True, timeout=60)
    write_text_atomic(_manifest_path(), json.dumps({"files": [str(link)]}, indent=2) + "\n")
    return [link]


def install() -> list[Path]:
    if sys.platform == "win32":
        return install_windows()
    if sys.platform == "darwin":
        print("macOS: no launcher is installed. Run this to start the app, or wrap it with Automator:")
        print("  " + " ".join(shlex.quote(part) for part in launch_command()))
        return []
    return install_linux()


def uninstall() -> list[Path]:
    """Remove the files the manifest lists (and the manifest); never anything else."""
    manifest = _manifest_path()
    try:
        files = [Path(p) for p in read_json(manifest, MANIFEST_MAX_BYTES, "the launcher manifest")["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    removed = []
    for path in files:
        if path.is_file():
            path.unlink()
            removed.append(path)
    manifest.unlink(missing_ok=True)
    try:
        manifest.parent.rmdir()
    except OSError:
        pass  # not empty: something else lives there
    return removed


def main(install: bool) -> int:
    """CLI entry for --install-launcher / --uninstall-launcher; prints what changed."""
    try:
        if install:
            files = globals()["install"]()
            for path in files:
                print(f"installed {path}")
        else:
            files = uninstall()
            for path in files:
                print(f"removed {path}")
            if not files:
                print("nothing to remove: no launcher was installed by convnet-studio")
    except (OSError, subprocess.SubprocessError) as error:
        print(f"convnet-studio: launcher {'install' if install else 'removal'} failed: {error}", file=sys.stderr)
        return 1
    return 0
