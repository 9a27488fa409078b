#!/usr/bin/env bash
# ensure-venv.sh VENV_DIR PIP_TARGET
# Creates VENV_DIR with Python 3.11+ if it is missing, and (re)installs PIP_TARGET into it
# whenever pyproject.toml changed since the last install. Prints the venv's python path.
#
# PIP_TARGET is "." or ".[extra,extra]". One venv can serve several commands (run-tests.sh
# wants ".[train,test]", run-train.sh ".[train]"): a venv whose last install already covers
# the extras asked for is left alone, and a new install keeps the extras it had, so running
# one script never makes the other reinstall.
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

# ".[a,b]" -> "a b" (sorted, one word each); "." -> ""
extras_of() {
  local spec="$1"
  [[ "$spec" == *"["*"]"* ]] || { echo ""; return; }
  spec="${spec#*[}"; spec="${spec%]*}"
  tr ',' '\n' <<<"$spec" | sed 's/ //g' | { grep -v '^$' || true; } | sort -u | tr '\n' ' ' | sed 's/ $//'
}

stamp="$venv/.convnet-studio-installed"
project_hash="$(sha256sum pyproject.toml | cut -c1-16)"
wanted_extras="$(extras_of "$target")"
installed_hash=""; installed_extras=""
if [[ -f "$stamp" ]]; then
  read -r installed_hash installed_target < "$stamp" || true
  installed_extras="$(extras_of "${installed_target:-.}")"
fi

covered=1
[[ "$installed_hash" == "$project_hash" ]] || covered=0
for extra in $wanted_extras; do
  [[ " $installed_extras " == *" $extra "* ]] || covered=0
done

if [[ ! -x "$venv/bin/python" ]]; then
  python="$(find_python)"
  echo "Creating $venv with $python ..." >&2
  "$python" -m venv "$venv"
  covered=0; installed_extras=""
fi
if [[ "$covered" != 1 ]]; then
  all_extras="$(tr ' ' '\n' <<<"$installed_extras $wanted_extras" | { grep -v '^$' || true; } | sort -u | paste -sd, -)"
  install_target="."
  [[ -z "$all_extras" ]] || install_target=".[${all_extras}]"
  echo "Installing $install_target into $venv (first run takes a few minutes) ..." >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$install_target" >&2
  echo "$project_hash $install_target" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
fi
echo "$venv/bin/python"
