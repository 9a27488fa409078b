#!/usr/bin/env bash
# Runs the benchmark suite and regenerates docs/benchmarks.md and docs/benchmarks.json,
# creating its environment (.venv, the same one ./run-tests.sh uses) the first time.
# Arguments go to `python -m benchmarks`, e.g. ./run-benchmarks.sh --only single,startup
# or ./run-benchmarks.sh --quick --out-dir /some/dir (tiny sizes, a smoke run).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/system-deps.sh  # the start-up benchmark starts the real Qt app (offscreen)
python="$(bash scripts/ensure-venv.sh .venv ".[train,test]")"
exec "$python" -m benchmarks "$@"
