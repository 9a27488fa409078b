#!/usr/bin/env bash
# Runs the whole test suite, creating its environment (.venv: app, training and test
# dependencies) and installing Xvfb/ImageMagick for the on-screen smoke test the first time.
# Extra arguments go to pytest, e.g. ./run-tests.sh -m "not slow" or ./run-tests.sh -k gradcam
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/system-deps.sh --test
python="$(bash scripts/ensure-venv.sh .venv ".[train,test]")"
exec "$python" -m pytest "$@"
