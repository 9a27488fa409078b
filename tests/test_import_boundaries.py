"""Import boundaries: the contracts declared in pyproject.toml ([tool.importlinter]) hold.

- desktop.core imports no Qt (PySide6, shiboken6) and nothing of desktop.qt or desktop.app;
- desktop imports no TensorFlow, Keras, tf2onnx, onnx or training;
- the headless commands (convnet-classify, convnet-undo-sort) import no Qt;
- training imports no Qt and nothing of desktop;
- convnet_common imports neither side (no desktop, training, Qt, TensorFlow or Keras);
- layers: benchmarks above desktop | training (independent) above convnet_common, and in
  desktop app above qt above core;
- no import cycles between the modules or sub-packages of any package (and, checked here
  with grimp, none between a package's __init__ and its own modules either).

Checked twice. Statically by import-linter (`lint-imports` from the repository root does
the same): every import statement counts, inside functions, under `if TYPE_CHECKING:`, and
relative ones, and so do indirect chains (desktop -> convnet_common -> keras breaks the
desktop contract). Dynamically, for each forbidden contract, by importing every module of
its source in a fresh interpreter and looking at sys.modules, which also catches what no
import statement shows (importlib.import_module, a third-party library pulling Qt in).
tests/contracts/test_contracts_can_fail.py proves each contract can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from contracts.import_contracts import (
    ROOT,
    contracts,
    importlinter_config,
    lint_imports,
    module_cycles,
    root_packages,
)

QT = {"PySide6", "shiboken6"}
TENSORFLOW = {"tensorflow", "keras"}
# What the issue asks for; pyproject.toml may forbid more, never less.
REQUIRED_FORBIDDEN = {
    "desktop.core": QT | {"desktop.qt"},
    "desktop": TENSORFLOW | {"training"},
    "training": QT | {"desktop"},
    "convnet_common": QT | TENSORFLOW | {"desktop", "training"},
}


def test_import_contracts_are_kept():
    result = lint_imports()
    assert result.returncode == 0 and not result.broken, (
        f"broken import contracts: {sorted(result.broken)}\n\n{result.output}"
    )


def test_no_import_cycles_between_modules():
    """Finer than the no-cycles contract: a package's __init__ and its own modules too."""
    cycles = module_cycles()
    assert not cycles, "import cycles:\n" + "\n\n".join("\n".join(c["imports"]) for c in cycles)


def test_contracts_are_declared_as_strictly_as_the_boundaries_need():
    config = importlinter_config()
    assert str(config.get("include_external_packages")).lower() == "true"
    assert str(config.get("exclude_type_checking_imports", "false")).lower() == "false"
    assert set(root_packages()) >= {"desktop", "training", "convnet_common"}
    forbidden = [c for c in contracts() if c["type"] == "forbidden"]
    for source, required in REQUIRED_FORBIDDEN.items():
        covering = [
            c
            for c in forbidden
            if source in c["source_modules"]
            and required <= set(c["forbidden_modules"])
            and not c.get("ignore_imports")
            and str(c.get("allow_indirect_imports", "false")).lower() == "false"
        ]
        assert covering, f"no forbidden contract keeps {source} from importing {sorted(required)}"
    acyclic = [c for c in contracts() if c["type"] == "acyclic_siblings"]
    assert acyclic and set(root_packages()) <= set(acyclic[0]["ancestors"])


def _modules_loaded_after_importing(sources: list[str]) -> tuple[list[str], list[str]]:
    """(modules imported, sys.modules afterwards) in a fresh interpreter."""
    code = f"""
import importlib, json, pkgutil, sys
imported = []
for source in {sources!r}:
    module = importlib.import_module(source)
    imported.append(source)
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, source + "."):
            importlib.import_module(info.name)
            imported.append(info.name)
print(json.dumps([imported, sorted(sys.modules)]))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    imported, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    return imported, loaded


@pytest.mark.parametrize("contract", [c for c in contracts() if c["type"] == "forbidden"], ids=lambda c: c["id"])
def test_importing_every_module_loads_nothing_forbidden(contract):
    imported, loaded = _modules_loaded_after_importing(contract["source_modules"])
    assert len(imported) >= len(contract["source_modules"])
    bad = sorted(
        name for name in loaded if any(name == f or name.startswith(f + ".") for f in contract["forbidden_modules"])
    )
    assert not bad, f"{contract['name']}: importing {len(imported)} modules loaded {bad}"
