#!/usr/bin/env bash
# Runs `convnet-train`, creating the training environment (.venv: TensorFlow, tf2onnx and
# the app's dependencies) the first time; no tests are run. Arguments pass through, and
# paths in them are relative to where you run it from:
#   ./run-train.sh models
#   ./run-train.sh train DATA_DIR --backbone mobilenet_v2 --out runs/pets
#   ./run-train.sh export runs/pets --out exported_models/pets.onnx
# With no arguments it prints convnet-train's help.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$(bash "$here/scripts/ensure-venv.sh" .venv ".[train]")"
if [[ $# -eq 0 ]]; then
  set -- --help
fi
exec "$here/$(dirname "$python")/convnet-train" "$@"
