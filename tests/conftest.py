"""Shared test setup: Qt runs offscreen, and test helpers and scripts are importable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for folder in (ROOT, ROOT / "scripts", ROOT / "tests", ROOT / "tests" / "training"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
