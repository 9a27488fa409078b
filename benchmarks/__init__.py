"""The benchmark suite: `./run-benchmarks.sh` or `python -m benchmarks` (see benchmarks/__main__.py).

Measures the app, `convnet-classify` and training against their targets (issue 5) and
regenerates docs/benchmarks.md and docs/benchmarks.json.
"""
