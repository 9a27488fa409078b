"""`tests/` mirrors the packages: the core tests need neither Qt nor the training extras.

tests/desktop/core (desktop.core and the headless `convnet-classify` / `convnet-undo-sort`)
and tests/convnet_common run here in a child pytest where importing PySide6, shiboken6,
pytest-qt, TensorFlow, Keras or tf2onnx raises ImportError and the pytest-qt plugin is
off. A Qt or TensorFlow import creeping into a core test, or into a conftest or helper it
uses, fails this test with the child's report. Tests that compare against Keras on
purpose (tests/desktop/core/test_augmentation_core.py) use pytest.importorskip, so they
skip there and still run in the full suite.

The whole core suite runs (not only collection): an import inside a test function is
caught too, and the two folders take well under a minute. Qt tests go to
tests/desktop/qt; tests/desktop itself holds only the shared conftest.py and helpers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_TESTS = ("tests/desktop/core", "tests/convnet_common")
# Not blocked (yet): Pillow (tests/bad_images.py draws the bad-image corpus with it) and
# PyYAML (test_augmentation_core reads its YAML back through training.config).
BLOCKED = ("PySide6", "shiboken6", "pytestqt", "tensorflow", "keras", "tf_keras", "tf2onnx")
TIMEOUT_S = 300

# Loaded with `-p`, before conftest files and entry-point plugins.
BLOCKER = textwrap.dedent(
    f'''
    """Refuse the Qt and TensorFlow packages: a core test must not need them."""
    import importlib.abc
    import sys

    BLOCKED = {BLOCKED!r}


    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(
                    f"{{name}} is blocked: core tests run without Qt and the training extras "
                    "(tests/test_test_layout.py)", name=name)
            return None


    already = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    assert not already, f"imported before the blocker: {{already}}"
    sys.meta_path.insert(0, Blocker())
    '''
)


def run_blocked(tmp_path: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    """pytest on `paths` in a child process with the blocked packages unimportable."""
    (tmp_path / "block_qt_and_tf.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "block_qt_and_tf",
        "-p",
        "no:pytest-qt",
        "-p",
        "no:cacheprovider",
        "-x",
        "-q",
        "-o",
        "addopts=",
        *paths,
    ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def test_core_tests_pass_without_qt_or_tensorflow(tmp_path: Path) -> None:
    result = run_blocked(tmp_path, *CORE_TESTS)
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert " passed" in result.stdout, report


def test_the_blocked_run_reports_qt_and_tensorflow_imports(tmp_path: Path) -> None:
    """The check can fail: a test importing PySide6 at the top, or TensorFlow inside a test, is reported."""
    sneaky = {
        "qt": ("from PySide6.QtCore import QObject\n\n\ndef test_it():\n    assert QObject\n", "PySide6 is blocked"),
        "tf": ("def test_it():\n    import tensorflow\n\n    assert tensorflow\n", "tensorflow is blocked"),
    }
    for name, (source, expected) in sneaky.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"test_sneaky_{name}.py").write_text(source, encoding="utf-8")
        result = run_blocked(folder, str(folder))
        assert result.returncode != 0, result.stdout
        assert expected in result.stdout, result.stdout


def test_tests_desktop_holds_no_test_files_of_its_own() -> None:
    """Every desktop test is in core/ (no Qt) or qt/ (needs Qt)."""
    stray = sorted(p.name for p in (ROOT / "tests" / "desktop").glob("test_*.py"))
    assert not stray, f"move these into tests/desktop/core or tests/desktop/qt: {stray}"
