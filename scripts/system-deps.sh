#!/usr/bin/env bash
# Installs the system libraries Qt 6 needs on X11 (without them the app aborts with
# "Could not load the Qt platform plugin xcb"), plus, with --test, Xvfb and ImageMagick
# for the on-screen smoke test. Installs only what is missing; needs root or sudo.
set -euo pipefail

packages=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
          libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
          libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libglib2.0-0 libfontconfig1
          libdbus-1-3 fonts-dejavu-core)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(xvfb imagemagick x11-utils desktop-file-utils)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Please install the equivalents of: ${missing[*]} (Qt 6 xcb dependencies)" >&2
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
