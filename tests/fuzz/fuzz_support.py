"""Shared fuzzing set-up: bounded, reproducible hypothesis settings and kept failures.

CI runs every fuzz test with a fixed number of examples and `derandomize=True`, so a
run is the same every time and fits the suite's time budget. For a longer hunt:

    CONVNET_FUZZ_PROFILE=deep .venv/bin/python -m pytest tests/fuzz

runs 50 times as many random (not derandomised) examples and remembers failures in
test-artifacts/hypothesis-db. Either way, an input that breaks a property is written
to test-artifacts/fuzz-failures/<target>/; copy it into tests/fuzz/regressions/<target>/
(with a line in that folder's README.md) and it is replayed on every run from then on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
FAILURES = ROOT / "test-artifacts" / "fuzz-failures"

PROFILE_ENV = "CONVNET_FUZZ_PROFILE"
_SCALE = {"ci": 1, "deep": 50}
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example]

settings.register_profile(
    "convnet-ci", deadline=None, derandomize=True, database=None, print_blob=True, suppress_health_check=_QUIET
)
settings.register_profile(
    "convnet-deep",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_QUIET,
    database=DirectoryBasedExampleDatabase(str(ROOT / "test-artifacts" / "hypothesis-db")),
)


def profile_name() -> str:
    name = os.environ.get(PROFILE_ENV, "ci")
    if name not in _SCALE:
        raise ValueError(f"{PROFILE_ENV} must be one of {', '.join(_SCALE)}, got {name!r}")
    return name


def fuzz_settings(examples: int) -> settings:
    """`examples` inputs in CI (fixed, derandomised); 50 times as many random ones with the deep profile."""
    name = profile_name()
    return settings(settings.get_profile(f"convnet-{name}"), max_examples=examples * _SCALE[name])


def _is_final_example() -> bool:
    """True on hypothesis's last replay of a failure (the shrunk input), or outside hypothesis."""
    try:
        from hypothesis.control import current_build_context

        return bool(getattr(current_build_context(), "is_final", True))
    except Exception:
        return True


def keep_failure(target: str, data: bytes | dict[str, Any], suffix: str = ".bin") -> Path | None:
    """Save an input that broke a property, so it can become a regression file."""
    if not _is_final_example():
        return None
    if isinstance(data, dict):
        blob = json.dumps(data, ensure_ascii=True, indent=1).encode("ascii")
        suffix = ".json"
    else:
        blob = data
    folder = FAILURES / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha1(blob).hexdigest()[:16]}{suffix}"
    path.write_bytes(blob)
    return path


def regression_files(target: str, suffix: str) -> list[Path]:
    return sorted((REGRESSIONS / target).glob(f"*{suffix}"))
