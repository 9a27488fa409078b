"""Shared set-up for the adoption tests: the factory module is importable, the CLI runs in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def run_cli(capsys):
    """`convnet-train ARGS` in this process: (exit status, stdout, stderr)."""
    from training import cli

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 2
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
