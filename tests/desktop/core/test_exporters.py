"""One table of result formats (desktop.core.exporters) serves the CLI, the Batch buttons and the menu."""

from __future__ import annotations

from desktop.classify_cli import build_parser
from desktop.core.exporters import EXPORTERS


def test_every_format_is_a_cli_option() -> None:
    options = {option for action in build_parser()._actions for option in action.option_strings}
    assert {f"--{e.kind}" for e in EXPORTERS} <= options
