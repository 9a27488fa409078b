"""Each import contract in pyproject.toml can fail: one bad import in a copy breaks it.

The four packages' sources are copied into a temporary folder, a probe (a new module, or
lines added to an existing one) brings in one forbidden import, and `lint-imports` is run
there with the repository's pyproject.toml. The contracts the probe is meant to break must
be reported BROKEN, with the probe's own import in their report (so it was the copy that
was checked, not the installed packages); every other contract must come out as it does
for the untouched copy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from contracts.import_contracts import ROOT, contracts, lint_imports, module_cycles, root_packages


@dataclass(frozen=True)
class Probe:
    name: str
    files: dict[str, str]  # path -> text (a new module, or appended to an existing one)
    breaks: dict[str, tuple[str, ...]]  # contract id -> lines its report must contain


PROBES = [
    Probe(
        "ray-outside-ray-classify",
        {"desktop/core/_probe.py": "def load():\n    import ray\n"},
        {"ray-only-for-cluster-runs": ("desktop.core._probe -> ray (l.2)",)},
    ),
    Probe(
        "qt-in-desktop-core",
        {"desktop/core/_probe.py": "from PySide6 import QtCore\n"},
        {"desktop-core-no-qt": ("desktop.core._probe -> PySide6 (l.1)",)},
    ),
    Probe(
        "relative-qt-import-in-desktop-core",
        {
            "desktop/qt/_probe_target.py": "",
            "desktop/core/_probe.py": '"""A probe."""\n\nfrom ..qt import _probe_target\n',
        },
        {
            "desktop-core-no-qt": ("desktop.core._probe -> desktop.qt._probe_target (l.3)",),
            "desktop-layers": ("desktop.core._probe -> desktop.qt._probe_target (l.3)",),
            # desktop.qt imports desktop.core, so desktop.core -> desktop.qt closes a cycle.
            "no-cycles": ("No cycles are allowed in desktop.",),
        },
    ),
    Probe(
        "qt-type-checking-import-in-desktop-core",
        {
            "desktop/core/_probe.py": (
                "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from PySide6.QtGui import QImage\n"
            ),
        },
        {"desktop-core-no-qt": ("desktop.core._probe -> PySide6 (l.4)",)},
    ),
    Probe(
        "qt-reaching-desktop-core-through-convnet-common",
        {
            "convnet_common/_probe.py": "def load():\n    import shiboken6\n",
            "desktop/core/_probe.py": "from convnet_common import _probe\n",
        },
        {
            "desktop-core-no-qt": (
                "desktop.core._probe -> convnet_common._probe (l.1)",
                "convnet_common._probe -> shiboken6 (l.2)",
            ),
            "common-imports-neither-side": ("convnet_common._probe -> shiboken6 (l.2)",),
        },
    ),
    Probe(
        "lazy-tensorflow-import-in-desktop",
        {"desktop/qt/_probe.py": "def load():\n    import tensorflow as tf\n\n    return tf\n"},
        {"desktop-no-tensorflow": ("desktop.qt._probe -> tensorflow (l.2)",)},
    ),
    Probe(
        "keras-in-desktop-cli",
        {"desktop/undo_sort_cli.py": "\n\ndef _probe():\n    from keras import ops\n"},
        {"desktop-no-tensorflow": ("desktop.undo_sort_cli -> keras",)},
    ),
    Probe(
        "training-in-desktop",
        {"training/_probe_target.py": "", "desktop/_probe.py": "from training import _probe_target\n"},
        {
            "desktop-no-tensorflow": ("desktop._probe -> training._probe_target (l.1)",),
            "top-level-layers": ("desktop._probe -> training._probe_target (l.1)",),
        },
    ),
    Probe(
        "benchmarks-in-desktop",
        {"benchmarks/_probe_target.py": "", "desktop/_probe.py": "import benchmarks._probe_target\n"},
        {
            "desktop-no-tensorflow": ("desktop._probe -> benchmarks._probe_target (l.1)",),
            "top-level-layers": ("desktop._probe -> benchmarks._probe_target (l.1)",),
        },
    ),
    Probe(
        "qt-view-in-headless-cli",
        {
            "desktop/qt/_probe_target.py": "",
            "desktop/classify_cli.py": "\n\ndef _probe():\n    from desktop.qt import _probe_target\n",
        },
        {"headless-cli-no-qt": ("desktop.classify_cli -> desktop.qt._probe_target",)},
    ),
    Probe(
        "desktop-in-training",
        {"desktop/_probe_target.py": "", "training/_probe.py": "from desktop import _probe_target\n"},
        {
            "training-no-qt": ("training._probe -> desktop._probe_target (l.1)",),
            "top-level-layers": ("training._probe -> desktop._probe_target (l.1)",),
        },
    ),
    Probe(
        "qt-in-training-networks",
        {"training/networks/_probe.py": "def show():\n    from PySide6.QtWidgets import QApplication\n"},
        {"training-no-qt": ("training.networks._probe -> PySide6 (l.2)",)},
    ),
    Probe(
        "training-in-convnet-common",
        {"training/_probe_target.py": "", "convnet_common/_probe.py": "from training import _probe_target\n"},
        {
            "common-imports-neither-side": ("convnet_common._probe -> training._probe_target (l.1)",),
            "top-level-layers": ("convnet_common._probe -> training._probe_target (l.1)",),
        },
    ),
    Probe(
        "keras-in-convnet-common",
        {"convnet_common/_probe.py": "import keras\n"},
        {"common-imports-neither-side": ("convnet_common._probe -> keras (l.1)",)},
    ),
    Probe(
        "qt-view-importing-the-app",
        {"desktop/qt/_probe.py": "from .. import app\n"},
        {
            "desktop-layers": ("desktop.qt._probe -> desktop.app (l.1)",),
            # desktop.app imports desktop.qt: a cycle between the two.
            "no-cycles": ("No cycles are allowed in desktop.",),
        },
    ),
    Probe(
        "lazy-relative-cycle-in-convnet-common",
        {
            "convnet_common/_probe_a.py": "from convnet_common import _probe_b\n",
            "convnet_common/_probe_b.py": "def later():\n    from . import _probe_a\n",
        },
        {"no-cycles": ("No cycles are allowed in convnet_common.",)},
    ),
]


def _sources_only(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: keep .py files and the folders that may hold them."""
    return {
        name
        for name in names
        if name in ("__pycache__", ".cache") or (not name.endswith(".py") and not Path(folder, name).is_dir())
    }


def _copy_packages(destination: Path) -> Path:
    destination.mkdir(parents=True)
    for package in root_packages():
        shutil.copytree(ROOT / package, destination / package, ignore=_sources_only)
    return destination


def _with_probe(source: Path, destination: Path, files: dict[str, str]) -> Path:
    shutil.copytree(source, destination)
    for relative, text in files.items():
        path = destination / relative
        if path.exists():
            path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
        else:
            path.write_text(text, encoding="utf-8")
    return destination


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return _copy_packages(tmp_path_factory.mktemp("contracts") / "pristine")


@pytest.fixture(scope="module")
def baseline(pristine):
    return lint_imports(cwd=pristine)


def test_every_contract_has_a_probe_that_breaks_it():
    declared = {c["id"] for c in contracts()}
    proven = set().union(*(probe.breaks for probe in PROBES))
    assert declared <= proven, f"contracts no probe breaks: {sorted(declared - proven)}"
    assert proven <= declared, f"probes name contracts that are not declared: {sorted(proven - declared)}"


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_one_bad_import_breaks_the_contract(probe, pristine, baseline, tmp_path):
    result = lint_imports(cwd=_with_probe(pristine, tmp_path / "tree", probe.files))
    for contract_id, evidence in probe.breaks.items():
        assert result.status[contract_id] == "BROKEN", f"{contract_id} kept:\n{result.output}"
        report = [line.strip().lstrip("- ") for line in result.section(contract_id).splitlines()]
        for expected in evidence:  # a whole line, or one that goes on with its line numbers
            assert any(line == expected or line.startswith(expected + " (l.") for line in report), (
                f"{contract_id}: expected {expected!r} in its report:\n{result.section(contract_id)}"
            )
    for contract_id, status in baseline.status.items():
        if contract_id not in probe.breaks:
            assert result.status[contract_id] == status, (
                f"{contract_id} is {result.status[contract_id]} with the probe, {status} without:\n{result.output}"
            )


def test_cycle_between_a_package_and_its_own_module_is_found(pristine, tmp_path):
    tree = _with_probe(
        pristine,
        tmp_path / "tree",
        {
            "convnet_common/_probe.py": "import convnet_common\n",
            "convnet_common/__init__.py": "\nfrom convnet_common import _probe  # noqa: E402\n",
        },
    )
    cycles = [c for c in module_cycles(cwd=tree) if "convnet_common._probe" in c["modules"]]
    assert cycles and cycles[0]["modules"] == ["convnet_common", "convnet_common._probe"], cycles
