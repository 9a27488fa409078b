#!/usr/bin/env bash
# Starts ConvNet Studio on the bundled default model, creating its environment (.venv-app,
# the app's own dependencies only: no TensorFlow) the first time. Arguments pass through,
# and paths in them are relative to where you run it from:
#   ./run-app.sh [MODEL.onnx] [IMAGES...] [--provider auto|cuda|cpu]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/scripts/system-deps.sh"
python="$(bash "$here/scripts/ensure-venv.sh" .venv-app ".")"
exec "$here/$python" -m desktop.app "$@"
