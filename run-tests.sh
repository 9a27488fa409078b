#!/usr/bin/env bash
# Runs the linter, the formatter check and the whole test suite, creating the environment
# (.venv: app, training, Ray-cluster and test dependencies) and installing Xvfb/ImageMagick for the
# on-screen tests the first time. Extra arguments go to pytest, e.g.
#   ./run-tests.sh -m "not slow"      ./run-tests.sh -k gradcam
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/system-deps.sh --test
python="$(bash scripts/ensure-venv.sh .venv ".[train,test,cluster]")"
bin="$(dirname "$python")"
"$bin/ruff" check --quiet . || { echo "ruff check found problems (fix them, or run: $bin/ruff check --fix .)" >&2; exit 1; }
"$bin/ruff" format --check --quiet . || { echo "files need formatting: run $bin/ruff format ." >&2; exit 1; }
exec "$python" -m pytest "$@"
