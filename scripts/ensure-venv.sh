#!/usr/bin/env bash
# ensure-venv.sh VENV_DIR PIP_TARGET
# Creates VENV_DIR with Python 3.11+ if it is missing, and (re)installs PIP_TARGET into it
# whenever pyproject.toml changed since the last install. Prints the venv's python path.
set -euo pipefail
venv="$1"; target="$2"
cd "$(dirname "$0")/.."

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "ConvNet Studio needs Python 3.11 or newer; none was found on PATH." >&2
  return 1
}

stamp="$venv/.convnet-studio-installed"
wanted="$(cat pyproject.toml | sha256sum | cut -c1-16) $target"
if [[ ! -x "$venv/bin/python" ]]; then
  python="$(find_python)"
  echo "Creating $venv with $python ..." >&2
  "$python" -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  echo "Installing $target into $venv (first run takes a few minutes) ..." >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$target" >&2
  echo "$wanted" > "$stamp"
fi
echo "$venv/bin/python"
