#!/usr/bin/env bash
# Starts ConvNet Studio on the bundled default model, creating its environment (.venv-app,
# the app's own dependencies only: no TensorFlow) the first time. Arguments pass through:
#   ./run-app.sh [MODEL.onnx] [IMAGES...] [--provider auto|cuda|cpu]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/system-deps.sh
python="$(bash scripts/ensure-venv.sh .venv-app ".")"
exec "$python" -m desktop.app "$@"
