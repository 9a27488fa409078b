"""No unsafe deserialisation and no shell anywhere in the project's own code.

Models and datasets come from strangers, so nothing that reads them may run code
from them. The rule is checked statically over every .py file in the packages and
scripts with `ast` (imports and lazy imports inside functions included, aliases
followed), and the checker itself is tested on small bad and good snippets, so a
checker that quietly finds nothing would fail here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("convnet_common", "desktop", "training", "scripts", "benchmarks")

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "joblib", "cloudpickle"}
CODE_BUILTINS = {"eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile"}
YAML_UNSAFE = {
    f"yaml.{name}" for name in ("load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all")
}
SHELL_CALLS = {"os.system", "os.popen", "asyncio.create_subprocess_shell"}
PICKLE_READERS = {"torch.load", "pandas.read_pickle"}


class _Checker(ast.NodeVisitor):
    """Collects findings as 'line: what is wrong'."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.findings: list[str] = []

    def _flag(self, node: ast.AST, text: str) -> None:
        self.findings.append(f"{getattr(node, 'lineno', 0)}: {text}")

    # imports -------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in BANNED_MODULES:
                self._flag(node, f"imports {alias.name} (unsafe deserialisation)")
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            qualified = f"{module}.{alias.name}" if module else alias.name
            if module.split(".")[0] in BANNED_MODULES or alias.name in BANNED_MODULES:
                self._flag(node, f"imports {qualified} (unsafe deserialisation)")
            if qualified in YAML_UNSAFE | SHELL_CALLS | PICKLE_READERS:
                self._flag(node, f"imports {qualified}")
            self.aliases[alias.asname or alias.name] = qualified
        self.generic_visit(node)

    # calls ---------------------------------------------------------------------------
    def _qualified(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    @staticmethod
    def _keyword(node: ast.Call, name: str) -> ast.expr | None:
        return next((k.value for k in node.keywords if k.arg == name), None)

    @staticmethod
    def _is_constant(node: ast.expr | None, value: object) -> bool:
        return isinstance(node, ast.Constant) and node.value is value

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualified(node.func) or ""
        parts = name.split(".")
        if name in CODE_BUILTINS:
            self._flag(node, f"calls {name}() (runs code built from data)")
        elif name in YAML_UNSAFE:
            self._flag(node, f"calls {name}(); only yaml.safe_load is allowed")
        elif name in SHELL_CALLS:
            self._flag(node, f"calls {name}() (runs a shell)")
        elif name in PICKLE_READERS:
            self._flag(node, f"calls {name}() (unpickles)")
        elif name == "numpy.load" and not self._is_constant(self._keyword(node, "allow_pickle"), False):
            self._flag(node, "calls numpy.load() without allow_pickle=False")
        elif parts[-1] == "load_model" and ("keras" in parts or name.startswith("tensorflow.keras")):
            if not self._is_constant(self._keyword(node, "safe_mode"), True):
                self._flag(node, f"calls {name}() without safe_mode=True")
        elif parts[0] == "subprocess" and self._keyword(node, "shell") is not None:
            if not self._is_constant(self._keyword(node, "shell"), False):
                self._flag(node, f"calls {name}() with shell=")
        elif name in ("__import__", "importlib.import_module") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and str(first.value).split(".")[0] in BANNED_MODULES:
                self._flag(node, f"imports {first.value} dynamically (unsafe deserialisation)")
        self.generic_visit(node)


def check_source(source: str, filename: str = "<snippet>") -> list[str]:
    """Every unsafe pattern in `source`, as 'line: what is wrong'."""
    checker = _Checker()
    checker.visit(ast.parse(source, filename=filename))
    return checker.findings


def project_files() -> Iterator[Path]:
    for folder in SCANNED:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_the_project_has_no_unsafe_calls() -> None:
    files = list(project_files())
    assert len(files) > 50, "the scan found suspiciously few files"
    findings = []
    for path in files:
        for finding in check_source(path.read_text(encoding="utf-8"), str(path)):
            findings.append(f"{path.relative_to(ROOT)}:{finding}")
    assert not findings, "\n".join(findings)


def test_every_scanned_folder_exists() -> None:
    for folder in SCANNED:
        assert any((ROOT / folder).rglob("*.py")), folder


BAD_SNIPPETS = {
    "import pickle": "import pickle",
    "import pickle as p": "import pickle as p\np.loads(b'')",
    "from pickle import loads": "from pickle import loads",
    "cPickle from six": "from six.moves import cPickle",
    "dill": "import dill",
    "shelve": "import shelve",
    "marshal": "import marshal",
    "joblib": "from joblib import load",
    "dynamic pickle": "import importlib\nimportlib.import_module('pickle')",
    "__import__": "__import__('marshal')",
    "eval": "x = eval('1 + 1')",
    "exec": "exec(text)",
    "compile": "code = compile(src, 'f', 'exec')",
    "builtins.eval": "import builtins\nbuiltins.eval('1')",
    "yaml.load": "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "yaml.unsafe_load": "import yaml\nyaml.unsafe_load(text)",
    "yaml.full_load": "import yaml as y\ny.full_load(text)",
    "yaml.load_all": "import yaml\nyaml.load_all(text)",
    "from yaml import load": "from yaml import load\nload(text)",
    "np.load bare": "import numpy as np\nnp.load('a.npy')",
    "np.load pickle": "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
    "numpy.load variable": "import numpy\nnumpy.load('a.npz', allow_pickle=flag)",
    "from numpy import load": "from numpy import load\nload('a.npy')",
    "keras bare": "import keras\nkeras.models.load_model('m.keras')",
    "keras unsafe": "import keras\nkeras.models.load_model('m.keras', safe_mode=False)",
    "keras saving": "import keras\nkeras.saving.load_model('m.keras', compile=False)",
    "tf.keras": "import tensorflow as tf\ntf.keras.models.load_model('m.h5')",
    "from keras import": "from keras.models import load_model\nload_model('m.keras')",
    "lazy keras": "def f():\n    import keras\n    return keras.models.load_model(p, safe_mode=mode)",
    "subprocess shell": "import subprocess\nsubprocess.run('ls', shell=True)",
    "subprocess shell variable": "import subprocess as sp\nsp.Popen(cmd, shell=use_shell)",
    "from subprocess": "from subprocess import check_output\ncheck_output('ls', shell=True)",
    "os.system": "import os\nos.system('ls')",
    "os.popen": "import os\nos.popen('ls')",
    "from os import system": "from os import system\nsystem('ls')",
    "torch.load": "import torch\ntorch.load('m.pt')",
    "read_pickle": "import pandas as pd\npd.read_pickle('f')",
}


@pytest.mark.parametrize("name", sorted(BAD_SNIPPETS))
def test_checker_finds_each_unsafe_pattern(name: str) -> None:
    assert check_source(BAD_SNIPPETS[name]), f"the checker missed: {BAD_SNIPPETS[name]!r}"


GOOD_SNIPPETS = {
    "re.compile": "import re\nre.compile('a+')",
    "qt exec": "app.exec()\nbox.exec()",
    "yaml.safe_load": "import yaml\nyaml.safe_load(text)",
    "np.load safe": "import numpy as np\nwith np.load(path, allow_pickle=False) as f: pass",
    "keras safe": "import keras\nkeras.models.load_model(path, safe_mode=True)",
    "tf.keras safe": "import tensorflow as tf\ntf.keras.models.load_model(path, safe_mode=True)",
    "onnx load_model": "from desktop.core.model import load_model\nload_model('m.onnx', provider='cpu')",
    "subprocess list": "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'pass'], check=True)",
    "subprocess shell False": "import subprocess\nsubprocess.run(['ls'], shell=False)",
    "json": "import json\njson.loads(text)",
    "method named load": "model.load(path)\nstate.load(folder)",
}


@pytest.mark.parametrize("name", sorted(GOOD_SNIPPETS))
def test_checker_allows_safe_code(name: str) -> None:
    assert check_source(GOOD_SNIPPETS[name]) == []
