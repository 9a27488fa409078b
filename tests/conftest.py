"""Shared test setup: Qt runs offscreen, and test helpers and scripts are importable."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Verdicts of the guarded first run of each model (convnet_common/model_probe.py) go to one
# folder for the session: shared by every test and child process, never the user's cache.
_CACHE = tempfile.mkdtemp(prefix="convnet-test-cache-")
os.environ.setdefault("CONVNET_STUDIO_CACHE_DIR", _CACHE)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
for folder in (ROOT, ROOT / "scripts", ROOT / "tests", ROOT / "tests" / "training"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
