"""The desktop app never imports TensorFlow/Keras/tf2onnx; training never imports Qt.

Checked twice: statically, over every import statement in the source (lazy imports
inside functions included), and dynamically, by importing every module in a fresh
interpreter and looking at sys.modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = {
    "desktop": {"tensorflow", "keras", "tf2onnx", "tf_keras", "onnx", "training"},
    "training": {"PySide6", "PyQt5", "PyQt6", "shiboken6", "desktop"},
    "convnet_common": {"tensorflow", "keras", "tf2onnx", "PySide6", "desktop", "training"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_forbidden_import_statements(package):
    offenders = []
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found for {package}"
    for path in files:
        bad = imported_roots(path) & RULES[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert not offenders, "\n".join(offenders)


def _modules_loaded_after_importing(package: str) -> list[str]:
    code = f"""
import importlib, json, pkgutil, sys
import {package}
for info in pkgutil.walk_packages({package}.__path__, "{package}."):
    importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.parametrize("package", ["desktop", "training"])
def test_importing_every_module_loads_nothing_forbidden(package):
    loaded = {name.split(".")[0] for name in _modules_loaded_after_importing(package)}
    assert package in loaded
    assert not (loaded & RULES[package]), sorted(loaded & RULES[package])
